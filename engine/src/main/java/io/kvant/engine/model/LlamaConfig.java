package io.kvant.engine.model;

/**
 * Hyper-parameters of a Llama-family decoder.
 *
 * @param dim model (embedding) width
 * @param hiddenDim FFN inner width
 * @param layers number of transformer blocks
 * @param heads attention (query) heads
 * @param kvHeads key/value heads; {@code heads} must be a multiple of it (grouped-query attention)
 * @param vocabSize rows of the embedding and of the output head
 * @param contextLength the longest sequence the model accepts, in tokens
 * @param ropeTheta base of the rotary frequencies
 * @param normEps RMSNorm epsilon
 * @param ropeStyle dimension pairing of RoPE
 */
public record LlamaConfig(
    int dim,
    int hiddenDim,
    int layers,
    int heads,
    int kvHeads,
    int vocabSize,
    int contextLength,
    float ropeTheta,
    float normEps,
    RopeStyle ropeStyle) {

  public LlamaConfig {
    require(dim > 0, "dim must be positive, got " + dim);
    require(hiddenDim > 0, "hidden_dim must be positive, got " + hiddenDim);
    require(layers > 0, "layers must be positive, got " + layers);
    require(heads > 0 && dim % heads == 0, "heads must divide dim " + dim + ", got " + heads);
    require(
        kvHeads > 0 && heads % kvHeads == 0,
        "kv_heads must divide heads " + heads + ", got " + kvHeads);
    require((dim / heads) % 2 == 0, "head size must be even, got " + dim / heads);
    require(vocabSize > 0, "vocab_size must be positive, got " + vocabSize);
    require(contextLength > 0, "context_length must be positive, got " + contextLength);
    require(ropeTheta > 0 && Float.isFinite(ropeTheta), "rope theta must be positive");
    require(normEps > 0 && Float.isFinite(normEps), "norm epsilon must be positive");
  }

  private static void require(boolean ok, String message) {
    if (!ok) {
      throw new IllegalArgumentException(message);
    }
  }

  /** Floats per attention head. */
  public int headSize() {
    return dim / heads;
  }

  /** Floats of K (or V) per token per layer: {@code kvHeads * headSize}. */
  public int kvDim() {
    return kvHeads * headSize();
  }

  /** Query heads that share one KV head. */
  public int groupSize() {
    return heads / kvHeads;
  }
}
