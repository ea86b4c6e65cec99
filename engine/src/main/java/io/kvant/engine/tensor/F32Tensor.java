package io.kvant.engine.tensor;

import java.lang.foreign.MemorySegment;

/** {@link DType#F32} tensor: decoding is a bulk little-endian copy. */
public final class F32Tensor extends BaseTensor implements Tensor {
  F32Tensor(int rows, int cols, MemorySegment data) {
    super(DType.F32, rows, cols, data);
  }

  @Override
  public DType dtype() {
    return DType.F32;
  }

  @Override
  float getUnchecked(int row, int col) {
    return data.get(FLOAT_LE, ((long) row * cols + col) * Float.BYTES);
  }

  @Override
  void decodeRows(int row, int n, float[] dst, int off) {
    MemorySegment.copy(data, FLOAT_LE, (long) row * cols * Float.BYTES, dst, off, n * cols);
  }
}
