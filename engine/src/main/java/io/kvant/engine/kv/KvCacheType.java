package io.kvant.engine.kv;

/**
 * How the paged KV cache stores keys and values.
 *
 * <p>The quantized types keep one-byte codes and F32 scales placed as their {@link KvEncoding}
 * says; the byte counts here are those of {@link KvEncoding#PER_TOKEN} (one scale per token per KV
 * head), which the store of another encoding replaces with its own ({@link
 * KvStoreFactory#bytesPerBlock}). Every encoding writes one token at a time, and a full block is
 * never re-encoded, so blocks are shared between requests as they are.
 */
public enum KvCacheType {
  /** Plain floats: exact, the reference. */
  F32(4, 0),
  /** Signed bytes, {@code x ≈ scale * q}, {@code q} in [-127, 127]. */
  INT8(1, 4),
  /** OCP FP8 E4M3 (max 448) bytes times a per-token per-head scale. */
  FP8_E4M3(1, 4),
  /**
   * IEEE half floats, no scale: the CUDA backend's default (half the bytes of F32, and exact enough
   * for attention). The CPU store does not implement it.
   */
  F16(2, 0);

  private final int elementBytes;
  private final int scaleBytes;

  KvCacheType(int elementBytes, int scaleBytes) {
    this.elementBytes = elementBytes;
    this.scaleBytes = scaleBytes;
  }

  /** Bytes per stored element. */
  public int elementBytes() {
    return elementBytes;
  }

  /** Bytes of scale per token per KV head (for K, and again for V). */
  public int scaleBytes() {
    return scaleBytes;
  }
}
