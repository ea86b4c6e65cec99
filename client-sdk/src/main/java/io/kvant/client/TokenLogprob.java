package io.kvant.client;

import java.util.List;

/**
 * Log-probability of one generated token, with the most likely alternatives.
 *
 * @param tokenId the token
 * @param logprob its natural-log probability under the (temperature-adjusted) distribution
 * @param top the most likely alternatives, best first (their own {@code top} lists are empty);
 *     immutable
 */
public record TokenLogprob(int tokenId, float logprob, List<TokenLogprob> top) {
  /** Copies {@code top} into an immutable list. */
  public TokenLogprob {
    top = List.copyOf(top);
  }

  static List<TokenLogprob> of(List<io.kvant.api.v1.TokenLogprob> protos) {
    if (protos.isEmpty()) {
      return List.of();
    }
    return protos.stream()
        .map(
            p ->
                new TokenLogprob(
                    p.getTokenId(),
                    p.getLogprob(),
                    p.getTopList().stream()
                        .map(t -> new TokenLogprob(t.getTokenId(), t.getLogprob(), List.of()))
                        .toList()))
        .toList();
  }
}
