package io.kvant.engine.tensor;

import java.lang.foreign.MemorySegment;

/**
 * {@link DType#F16} tensor.
 *
 * <p>Design note: JDK 25's Vector API has no half-float lane type. Two decoders were measured on
 * AVX-512 (Zen 5) in isolation: integer lane ops (shift the exponent+mantissa up by 13, multiply by
 * 2^112, patch infinities/NaNs, or the sign back) and a plain loop of {@link Float#float16ToFloat},
 * which C2 intrinsifies and auto-vectorises to {@code vcvtph2ps}. The plain loop was 2-4x faster
 * there, so it is the decoder; it is exact and matches {@link #get} bit for bit. Open issue: inside
 * {@link #matmul} F16 still runs ~5x slower than BF16 at cache-resident sizes, so the loop is
 * probably not vectorised in that context; needs a look at the generated code.
 */
public final class F16Tensor extends BaseTensor implements Tensor {
  F16Tensor(int rows, int cols, MemorySegment data) {
    super(DType.F16, rows, cols, data);
  }

  @Override
  public DType dtype() {
    return DType.F16;
  }

  @Override
  float getUnchecked(int row, int col) {
    return f16(data, ((long) row * cols + col) * 2);
  }

  @Override
  void decodeRows(int row, int n, float[] dst, int off) {
    int total = n * cols; // rows are contiguous, so decode them as one run
    long base = (long) row * cols * 2;
    for (int i = 0; i < total; i++) {
      dst[off + i] = Float.float16ToFloat(data.get(SHORT_LE, base + 2L * i));
    }
  }
}
