package io.kvant.engine.kv;

/**
 * The shape of a model's KV cache.
 *
 * @param layers transformer blocks
 * @param kvHeads key/value heads per layer
 * @param headSize floats per head
 */
public record KvGeometry(int layers, int kvHeads, int headSize) {
  public KvGeometry {
    if (layers <= 0 || kvHeads <= 0 || headSize <= 0) {
      throw new IllegalArgumentException(
          "layers, kv heads and head size must be positive: "
              + layers
              + ", "
              + kvHeads
              + ", "
              + headSize);
    }
  }

  /** Floats of K (or V) per token per layer. */
  public int kvDim() {
    return kvHeads * headSize;
  }

  /** Bytes one token occupies in the cache (K and V, all layers, scales included). */
  public long bytesPerToken(KvCacheType type) {
    return 2L * layers * kvHeads * ((long) headSize * type.elementBytes() + type.scaleBytes());
  }
}
