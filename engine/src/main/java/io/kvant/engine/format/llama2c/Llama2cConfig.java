package io.kvant.engine.format.llama2c;

/**
 * Hyper-parameters from a llama2.c legacy (version 0) checkpoint header.
 *
 * @param dim transformer width
 * @param hiddenDim FFN hidden width
 * @param nLayers number of transformer blocks
 * @param nHeads query heads
 * @param nKvHeads key/value heads (fewer than {@code nHeads} for grouped-query attention)
 * @param vocabSize vocabulary size (always positive here; the header's sign is in {@code
 *     sharedClassifier})
 * @param seqLen maximum sequence length (rows of the RoPE tables)
 * @param sharedClassifier whether the output classifier is the token embedding (header vocab size
 *     positive) rather than a separate {@code wcls} (header vocab size negative)
 */
public record Llama2cConfig(
    int dim,
    int hiddenDim,
    int nLayers,
    int nHeads,
    int nKvHeads,
    int vocabSize,
    int seqLen,
    boolean sharedClassifier) {

  /** Width of one attention head, {@code dim / nHeads}. */
  public int headSize() {
    return dim / nHeads;
  }

  /** Width of the key/value projections, {@code nKvHeads * headSize()}. */
  public int kvDim() {
    return nKvHeads * headSize();
  }
}
