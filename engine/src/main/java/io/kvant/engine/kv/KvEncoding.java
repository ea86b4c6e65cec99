package io.kvant.engine.kv;

/**
 * How a quantized KV cache ({@link KvCacheType#INT8}, {@link KvCacheType#FP8_E4M3}) encodes one
 * token's head vector. Both keep the same storage per (layer, KV head, token): {@code headSize}
 * one-byte codes and one F32 scale, so a token is still encoded alone (written one token at a time,
 * shareable between requests by prefix caching) and the byte counts of {@link KvCacheType} hold.
 */
public enum KvEncoding {
  /**
   * The head vector {@code x} (length {@code n}) as it comes: {@code amax = max |x_i|}; INT8 {@code
   * scale = amax / 127}, {@code q_i = clamp(floor(x_i * 127 / amax + 0.5), -127, 127)} (Java's
   * {@code Math.round}); E4M3 {@code scale = amax / 448}, {@code q_i = e4m3_rne(x_i * 448 / amax)};
   * an all-zero vector gets scale 0 and codes 0. Decoded: {@code x_i ≈ scale * value(q_i)}. The
   * CUDA backend implements this one ({@code kv_append}); it is the default.
   */
  PER_TOKEN,
  /**
   * The head vector rotated first by the orthonormal Walsh-Hadamard matrix {@code H_n / sqrt(n)}
   * ({@code n = headSize}, a power of two; {@code H_1 = [1]}, {@code H_2m = [[H_m, H_m], [H_m,
   * -H_m]]}, so entry {@code (i, j)} is {@code (-1)^popcount(i & j) / sqrt(n)}), then encoded
   * exactly as {@link #PER_TOKEN}: {@code y = H x / sqrt(n)}, codes and scale from {@code y}.
   *
   * <p>Why: with 8-wide heads (stories260K) one outlier channel sets the absmax of the whole vector
   * and the other channels get a few levels only; the rotation spreads every channel's energy over
   * all of them (QuaRot's observation), so the absmax is near {@code |x| / sqrt(n)} times a small
   * factor. It needs no calibration and keeps tokens independent.
   *
   * <p>Reading: the matrix is symmetric and its own inverse, so {@code q . x = (H q / sqrt(n)) .
   * y}: scores rotate the query once per (query, head) and then read codes exactly as {@link
   * #PER_TOKEN}; values are summed as stored ({@code sum_t w_t * scale_t * value(q_t)}) and the
   * head's sum is rotated back once with the same transform. On the CPU only: the CUDA backend
   * refuses it.
   */
  HADAMARD;

  /** The option's spelling: {@code per-token}, {@code hadamard}. */
  public String optionName() {
    return name().toLowerCase(java.util.Locale.ROOT).replace('_', '-');
  }

  /** Parses {@link #optionName()}. */
  public static KvEncoding parse(String s) {
    for (KvEncoding e : values()) {
      if (e.optionName().equals(s.strip().toLowerCase(java.util.Locale.ROOT))) {
        return e;
      }
    }
    throw new IllegalArgumentException("must be per-token or hadamard, got '" + s + "'");
  }

  /**
   * In place: {@code x[off .. off+n) = H_n x / sqrt(n)} (the fast Walsh-Hadamard transform, {@code
   * n log n} additions; {@code n} a power of two). Its own inverse.
   */
  static void rotate(float[] x, int off, int n) {
    for (int h = 1; h < n; h <<= 1) {
      for (int i = 0; i < n; i += h << 1) {
        for (int j = i; j < i + h; j++) {
          float a = x[off + j];
          float b = x[off + j + h];
          x[off + j] = a + b;
          x[off + j + h] = a - b;
        }
      }
    }
    float norm = (float) (1.0 / Math.sqrt(n));
    for (int i = 0; i < n; i++) {
      x[off + i] *= norm;
    }
  }
}
