package io.kvant.engine.kv;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The encoder of {@link KvEncoding.Scaling#TOKEN_MSE}: a per-token scale chosen among {@value
 * #CANDIDATES} candidates by the squared error of the decoded head vector. A scalar loop, run once
 * per token written.
 */
final class MseScale {
  /** Candidate scales per head vector: {@code s_k = (amax / M) * 2^(k / 32)}, {@code k < 32}. */
  static final int CANDIDATES = 32;

  /** {@code 2^(k / 32)} rounded to F32, the factors of the candidates. */
  static final float[] FACTORS = new float[CANDIDATES];

  static {
    for (int k = 0; k < CANDIDATES; k++) {
      FACTORS[k] = (float) Math.pow(2, k / (double) CANDIDATES);
    }
  }

  private MseScale() {}

  /**
   * Encodes {@code src[off .. off+n)} into {@code dst[dOff ..)} with the candidate scale of least
   * squared error and returns that scale (0, codes 0, for an all-zero vector).
   */
  static float quantize(
      KvCacheType type, float[] src, int off, int n, MemorySegment dst, long dOff) {
    float s0 = absmaxScale(type, src, off, n);
    if (s0 == 0f) {
      dst.asSlice(dOff, n).fill((byte) 0);
      return 0f;
    }
    float best = s0;
    float bestErr = Float.POSITIVE_INFINITY;
    for (int k = 0; k < CANDIDATES; k++) {
      float s = s0 * FACTORS[k];
      float err = 0f;
      // A partial sum of squares only grows (F32 rounding is monotonic), so once it reaches the
      // best so far this candidate cannot win: stopping early picks the same scale.
      for (int i = 0; i < n && err < bestErr; i++) {
        float x = src[off + i];
        float d = x - s * KvKernels.value(type, KvKernels.code(type, x, s));
        err += d * d;
      }
      if (err < bestErr) {
        bestErr = err;
        best = s;
      }
    }
    return encode(type, src, off, n, dst, dOff, best);
  }

  /**
   * The parts {@link #quantizeWeighted} sums a candidate's error in: rows {@code [p * c, (p + 1) *
   * c)} of {@code W d}, {@code c = ceil(n / WEIGHTED_PARTS)}, one part after another. The GPU
   * computes the parts in separate blocks (kvant.cu's {@code kv_weighted_parts}, {@code KV_PARTS})
   * and adds them in this order, so both engines choose the same scale.
   */
  static final int WEIGHTED_PARTS = 8;

  /**
   * As {@link #quantize}, the candidate's error {@code sum_i d_i * (sum_j W_ij d_j)} ({@link
   * KvEncoding#CENTERED_QMSE}) with {@code W = w[wOff + i*n + j]}, an {@code n x n} second moment
   * matrix (positive semi-definite, so the error is {@code >= 0} up to rounding; no early stop: a
   * partial sum is not a bound). Each row {@code r_i = sum_j W_ij d_j} is summed in increasing
   * {@code j}; the products {@code d_i r_i} in increasing {@code i} within each of {@link
   * #WEIGHTED_PARTS} parts, and the parts' sums in increasing order from 0, every product and sum
   * rounded to F32 as written.
   */
  static float quantizeWeighted(
      KvCacheType type,
      float[] src,
      int off,
      int n,
      MemorySegment dst,
      long dOff,
      float[] w,
      int wOff) {
    float s0 = absmaxScale(type, src, off, n);
    if (s0 == 0f) {
      dst.asSlice(dOff, n).fill((byte) 0);
      return 0f;
    }
    float best = s0;
    float bestErr = Float.POSITIVE_INFINITY;
    float[] d = new float[n];
    int chunk = (n + WEIGHTED_PARTS - 1) / WEIGHTED_PARTS;
    for (int k = 0; k < CANDIDATES; k++) {
      float s = s0 * FACTORS[k];
      for (int i = 0; i < n; i++) {
        float x = src[off + i];
        d[i] = x - s * KvKernels.value(type, KvKernels.code(type, x, s));
      }
      float err = 0f;
      for (int p = 0; p < WEIGHTED_PARTS; p++) {
        float part = 0f;
        for (int i = p * chunk, end = Math.min(n, i + chunk); i < end; i++) {
          float r = 0f;
          for (int j = 0, row = wOff + i * n; j < n; j++) {
            r += w[row + j] * d[j];
          }
          part += d[i] * r;
        }
        err += part;
      }
      if (err < bestErr) {
        bestErr = err;
        best = s;
      }
    }
    return encode(type, src, off, n, dst, dOff, best);
  }

  /** The absmax scale (the first candidate's base) of {@code src[off .. off+n)}; 0 if all zero. */
  private static float absmaxScale(KvCacheType type, float[] src, int off, int n) {
    float amax = 0f;
    for (int i = 0; i < n; i++) {
      amax = Math.max(amax, Math.abs(src[off + i]));
    }
    return amax == 0f ? 0f : amax / KvKernels.codeMax(type);
  }

  /** Writes the codes of {@code src[off .. off+n)} at {@code scale}; returns the scale. */
  private static float encode(
      KvCacheType type, float[] src, int off, int n, MemorySegment dst, long dOff, float scale) {
    for (int i = 0; i < n; i++) {
      dst.set(ValueLayout.JAVA_BYTE, dOff + i, KvKernels.code(type, src[off + i], scale));
    }
    return scale;
  }
}
