package io.kvant.engine.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Objects;

/**
 * Shared state and the matmul driver of the {@link Tensor} implementations.
 *
 * <p>Design note: {@link #matmul} walks rows in tiles of {@link #TILE}. Each tile's weights are
 * decoded once, by the subclass's vectorised {@link #decodeRows}, into a small float scratch buffer
 * (a few KiB, L1/L2 resident) and then applied to every batch input by the type-independent {@link
 * DotKernel}. Decoding is exact for every storage type (fp16/bf16/int8/int4 times an fp16 scale all
 * fit a float mantissa), so the only rounding is in the dot product, whose per-element operation
 * order depends on nothing but the vector length: results are bitwise identical whatever the batch
 * size, row range or thread split. Decoding to scratch costs an L1 store and reload per weight,
 * which is cheap next to the memory traffic of streaming the weights, and keeps one dot kernel for
 * all types (a new type only writes its decoder, and gets the batched micro-kernel for free). Batch
 * 1 uses {@link DotKernel#dotRows}; larger batches use the register-blocked {@link
 * DotKernel#dotTile}, which reads each decoded weight vector once per four inputs instead of once
 * per input.
 */
abstract class BaseTensor {
  /** Rows decoded and dotted together; the dot kernel shares each x load across them. */
  static final int TILE = 4;

  static final ValueLayout.OfShort SHORT_LE =
      ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  static final ValueLayout.OfFloat FLOAT_LE =
      ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  final int rows;
  final int cols;
  final MemorySegment data;

  BaseTensor(DType type, int rows, int cols, MemorySegment data) {
    long expected = type.byteSize(rows, cols);
    Objects.requireNonNull(data, "data");
    if (data.byteSize() != expected) {
      throw new IllegalArgumentException(
          type
              + " "
              + rows
              + "x"
              + cols
              + " needs "
              + expected
              + " bytes, data has "
              + data.byteSize());
    }
    this.rows = rows;
    this.cols = cols;
    this.data = data;
  }

  public final int rows() {
    return rows;
  }

  public final int cols() {
    return cols;
  }

  public final long byteSize() {
    return data.byteSize();
  }

  public final MemorySegment data() {
    return data;
  }

  public final float get(int row, int col) {
    Objects.checkIndex(row, rows);
    Objects.checkIndex(col, cols);
    return getUnchecked(row, col);
  }

  public final void dequantizeRow(int row, float[] dst, int dstOff) {
    Objects.checkIndex(row, rows);
    Objects.checkFromIndexSize(dstOff, cols, dst.length);
    decodeRows(row, 1, dst, dstOff);
  }

  /** {@link Tensor#dotRow}: the row decoded as {@link #matmul} decodes it, then its dot kernel. */
  public final float dotRow(int row, float[] x, int xOff, float[] scratch) {
    Objects.checkFromIndexSize(xOff, cols, x.length);
    dequantizeRow(row, scratch, 0);
    return DotKernel.dot(scratch, 0, cols, x, xOff);
  }

  public final void matmul(float[] x, int batch, float[] out, int rowStart, int rowEnd) {
    checkMatmul(x, batch, out, rowStart, rowEnd);
    short[] raw = newRawScratch();
    if (batch == 1) {
      float[] tile = new float[TILE * cols];
      for (int r = rowStart; r < rowEnd; r += TILE) {
        int n = Math.min(TILE, rowEnd - r);
        decodeRows(r, n, tile, 0, raw);
        DotKernel.dotRows(tile, n, cols, x, 0, out, r);
      }
      return;
    }
    float[] tile = new float[TILE * cols];
    float[] acc = new float[DotKernel.accLength(TILE, batch)];
    for (int r = rowStart; r < rowEnd; r += TILE) {
      int n = Math.min(TILE, rowEnd - r);
      decodeRows(r, n, tile, 0, raw);
      DotKernel.dotTile(tile, cols, n, cols, x, cols, batch, out, r, rows, acc);
    }
  }

  public final void matmulScalar(float[] x, int batch, float[] out, int rowStart, int rowEnd) {
    checkMatmul(x, batch, out, rowStart, rowEnd);
    for (int r = rowStart; r < rowEnd; r++) {
      for (int b = 0; b < batch; b++) {
        float sum = 0f;
        for (int c = 0; c < cols; c++) {
          sum += getUnchecked(r, c) * x[b * cols + c];
        }
        out[b * rows + r] = sum;
      }
    }
  }

  private void checkMatmul(float[] x, int batch, float[] out, int rowStart, int rowEnd) {
    if (batch < 1) {
      throw new IllegalArgumentException("batch must be >= 1, got " + batch);
    }
    Objects.checkFromToIndex(rowStart, rowEnd, rows);
    Objects.checkFromIndexSize(0, (long) batch * cols, x.length);
    Objects.checkFromIndexSize(0, (long) batch * rows, out.length);
  }

  /** {@code W[row][col]}, indices already checked; the obviously-correct scalar decoder. */
  abstract float getUnchecked(int row, int col);

  /**
   * Decodes rows {@code [row, row + n)} into {@code dst[off ..]} with row stride {@code cols},
   * bitwise equal to {@link #getUnchecked}. Indices are trusted.
   */
  abstract void decodeRows(int row, int n, float[] dst, int off);

  /**
   * Scratch that {@link #decodeRows(int, int, float[], int, short[])} may use for up to {@link
   * #TILE} rows, one per {@link #matmul} call; {@code null} for types that need none.
   */
  short[] newRawScratch() {
    return null;
  }

  /**
   * {@link #decodeRows(int, int, float[], int)} with the scratch of {@link #newRawScratch} (or a
   * larger one); types without scratch ignore it.
   */
  void decodeRows(int row, int n, float[] dst, int off, short[] raw) {
    decodeRows(row, n, dst, off);
  }

  /** Reads the little-endian fp16 at byte {@code offset} of {@code seg} as a float. */
  static float f16(MemorySegment seg, long offset) {
    return Float.float16ToFloat(seg.get(SHORT_LE, offset));
  }
}
