package io.kvant.engine.forward;

import java.util.Arrays;

/**
 * A flattened batch of tokens from one or more sequences, for one forward step.
 *
 * <p>Row {@code i} is token {@code tokens[i]} of sequence {@code seqs[i]} (a {@link
 * io.kvant.engine.kv.KvStore} handle) at position {@code positions[i]}. Rows of one sequence must
 * appear in increasing position order, and every position before a sequence's first row in this
 * batch must already be in the KV store. {@code logitRows} lists the rows whose next-token logits
 * are wanted, in the order the logits are returned (usually the last row of each sequence).
 */
public record Batch(int[] tokens, int[] positions, int[] seqs, int[] logitRows) {
  public Batch {
    if (tokens.length == 0) {
      throw new IllegalArgumentException("batch must not be empty");
    }
    if (positions.length != tokens.length || seqs.length != tokens.length) {
      throw new IllegalArgumentException(
          "tokens, positions and seqs must have the same length: "
              + tokens.length
              + ", "
              + positions.length
              + ", "
              + seqs.length);
    }
    for (int r : logitRows) {
      if (r < 0 || r >= tokens.length) {
        throw new IllegalArgumentException(
            "logit row " + r + " outside [0, " + tokens.length + ")");
      }
    }
  }

  /**
   * A batch of one sequence's consecutive tokens starting at {@code startPos}, logits of the last.
   */
  public static Batch ofSequence(int seq, int startPos, int... tokens) {
    int[] positions = new int[tokens.length];
    int[] seqs = new int[tokens.length];
    for (int i = 0; i < tokens.length; i++) {
      positions[i] = startPos + i;
      seqs[i] = seq;
    }
    return new Batch(tokens.clone(), positions, seqs, new int[] {tokens.length - 1});
  }

  /** Number of token rows. */
  public int size() {
    return tokens.length;
  }

  @Override
  public String toString() {
    return "Batch[tokens="
        + Arrays.toString(tokens)
        + ", positions="
        + Arrays.toString(positions)
        + ", seqs="
        + Arrays.toString(seqs)
        + ", logitRows="
        + Arrays.toString(logitRows)
        + "]";
  }
}
