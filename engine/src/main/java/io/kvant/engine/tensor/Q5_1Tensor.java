package io.kvant.engine.tensor;

import java.lang.foreign.MemorySegment;

/**
 * {@link DType#Q5_1} tensor: blocks of 32 values in 24 bytes: fp16 {@code d}, fp16 {@code m}, then
 * the 5-bit codes of {@link Q5Blocks}; value {@code = d * code + m}.
 */
public final class Q5_1Tensor extends BaseTensor implements Tensor {
  private static final int BLOCK = 32;
  private static final int BLOCK_BYTES = 24;

  Q5_1Tensor(int rows, int cols, MemorySegment data) {
    super(DType.Q5_1, rows, cols, data);
  }

  @Override
  public DType dtype() {
    return DType.Q5_1;
  }

  @Override
  float getUnchecked(int row, int col) {
    long bo = ((long) row * cols + col) / BLOCK * BLOCK_BYTES;
    return f16(data, bo) * Q5Blocks.code(data, bo + 4, col % BLOCK) + f16(data, bo + 2);
  }

  @Override
  void decodeRows(int row, int n, float[] dst, int off) {
    int blocks = n * cols / BLOCK;
    long base = (long) row * (cols / BLOCK) * BLOCK_BYTES;
    for (int k = 0; k < blocks; k++) {
      long bo = base + (long) k * BLOCK_BYTES;
      Q5Blocks.decode(
          data, bo + 4, 0, f16(data, bo), f16(data, bo + 2), true, dst, off + k * BLOCK);
    }
  }
}
