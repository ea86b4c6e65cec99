package io.kvant.client;

import java.util.List;

/**
 * The result of {@link KvantClient#tokenize}: token ids and the piece of text each stands for.
 *
 * @param tokenIds the token ids; immutable
 * @param pieces the text of each token, same length as {@code tokenIds}; immutable
 */
public record Tokenization(List<Integer> tokenIds, List<String> pieces) {
  /** Copies the lists into immutable ones. */
  public Tokenization {
    tokenIds = List.copyOf(tokenIds);
    pieces = List.copyOf(pieces);
  }
}
