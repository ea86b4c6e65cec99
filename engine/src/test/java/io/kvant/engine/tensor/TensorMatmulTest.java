package io.kvant.engine.tensor;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class TensorMatmulTest {
  private static final int[] ROWS = {1, 3, 4, 17, 40};
  private static final int[] COLS_PLAIN = {1, 7, 16, 33, 100, 257};
  private static final int[] BLOCKS = {1, 3, 5, 9};
  private static final int[] BATCHES = {1, 2, 5};

  static int[] colsFor(DType type) {
    if (!type.isBlockType()) {
      return COLS_PLAIN;
    }
    return java.util.Arrays.stream(BLOCKS).map(b -> b * type.blockSize()).toArray();
  }

  /**
   * Vector and scalar kernels both within a worst-case float rounding bound of the exact (double)
   * result. Decoding is exact, so the only error is float summation of {@code cols} products:
   * recursive summation (scalar) or {@code cols/L} lane-wise FMAs plus a lane reduction and tail
   * (vector) both perform at most {@code cols + 1} roundings on any partial sum, each bounded by
   * {@code 2^-24} relative to the running sum of {@code |w*x|}, hence {@code |err| <= (cols + 2) *
   * 2^-24 * sum|w*x|} (a tiny absolute term covers results near zero).
   */
  @ParameterizedTest
  @EnumSource(DType.class)
  void vectorAndScalarMatchDoubleReference(DType type) {
    Random rnd = new Random(42 + type.ordinal());
    for (int rows : ROWS) {
      for (int cols : colsFor(type)) {
        Tensor w = RandomTensors.random(type, rows, cols, rnd);
        for (int batch : BATCHES) {
          float[] x = RandomTensors.randomInput(batch * cols, rnd);
          float[] vec = new float[batch * rows];
          float[] sca = new float[batch * rows];
          w.matmul(x, batch, vec, 0, rows);
          w.matmulScalar(x, batch, sca, 0, rows);
          for (int b = 0; b < batch; b++) {
            for (int r = 0; r < rows; r++) {
              double ref = RandomTensors.dotReference(w, r, x, b * cols);
              double tol = (cols + 2) * 0x1p-24 * RandomTensors.absDot(w, r, x, b * cols) + 1e-30;
              String where = type + " " + rows + "x" + cols + " batch=" + batch + " b=" + b;
              assertThat((double) vec[b * rows + r])
                  .as("vector " + where)
                  .isCloseTo(ref, within(tol));
              assertThat((double) sca[b * rows + r])
                  .as("scalar " + where)
                  .isCloseTo(ref, within(tol));
            }
          }
        }
      }
    }
  }

  private static org.assertj.core.data.Offset<Double> within(double tol) {
    return org.assertj.core.data.Offset.offset(tol);
  }

  /** Output rows are bitwise independent of batch size, row range and tiling ({@code dotRow}). */
  @ParameterizedTest
  @EnumSource(DType.class)
  void resultsAreBatchAndRangeInvariant(DType type) {
    Random rnd = new Random(7 + type.ordinal());
    int rows = 23;
    for (int cols : colsFor(type)) {
      Tensor w = RandomTensors.random(type, rows, cols, rnd);
      int batch = 5;
      float[] x = RandomTensors.randomInput(batch * cols, rnd);
      float[] full = new float[batch * rows];
      w.matmul(x, batch, full);

      for (int b = 0; b < batch; b++) {
        float[] one = new float[rows];
        w.matmul(Arrays.copyOfRange(x, b * cols, (b + 1) * cols), 1, one);
        assertThat(one).isEqualTo(Arrays.copyOfRange(full, b * rows, (b + 1) * rows));
      }

      // one row at a time (the head's refinement): the same bits as the batched product
      float[] scratch = new float[cols];
      for (int b = 0; b < batch; b++) {
        for (int r = 0; r < rows; r++) {
          assertThat(Float.floatToRawIntBits(w.dotRow(r, x, b * cols, scratch)))
              .as("%s row %d input %d", type, r, b)
              .isEqualTo(Float.floatToRawIntBits(full[b * rows + r]));
        }
      }

      int[][] ranges = {{0, 1}, {1, 4}, {4, 5}, {5, 17}, {17, 22}, {22, 23}};
      float[] pieced = new float[batch * rows];
      for (int[] range : ranges) {
        w.matmul(x, batch, pieced, range[0], range[1]);
      }
      assertThat(pieced).isEqualTo(full);
    }
  }

  /**
   * The first (interpreted) call and a call after JIT compilation give the same bits: guards
   * against summation orders that differ between the Vector API fallback and C2 intrinsics.
   */
  @ParameterizedTest
  @EnumSource(DType.class)
  void resultsAreStableAcrossJitTiers(DType type) {
    Random rnd = new Random(13);
    int rows = 5;
    int cols = type.isBlockType() ? 2 * type.blockSize() : 37;
    Tensor w = RandomTensors.random(type, rows, cols, rnd);
    float[] x = RandomTensors.randomInput(2 * cols, rnd);
    float[] first = new float[2 * rows];
    w.matmul(x, 2, first);
    float[] later = new float[2 * rows];
    for (int i = 0; i < 20_000; i++) {
      w.matmul(x, 2, later);
    }
    assertThat(later).isEqualTo(first);
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void rowRangeLeavesOtherOutputsUntouched(DType type) {
    Random rnd = new Random(3);
    int rows = 17;
    int cols = colsFor(type)[1];
    Tensor w = RandomTensors.random(type, rows, cols, rnd);
    int batch = 2;
    float[] x = RandomTensors.randomInput(batch * cols, rnd);
    for (boolean scalar : new boolean[] {false, true}) {
      float[] out = new float[batch * rows];
      Arrays.fill(out, Float.NaN);
      if (scalar) {
        w.matmulScalar(x, batch, out, 5, 11);
      } else {
        w.matmul(x, batch, out, 5, 11);
      }
      for (int b = 0; b < batch; b++) {
        for (int r = 0; r < rows; r++) {
          boolean inRange = r >= 5 && r < 11;
          assertThat(Float.isNaN(out[b * rows + r])).isEqualTo(!inRange);
        }
      }
    }
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void dequantizeRowEqualsGet(DType type) {
    Random rnd = new Random(11);
    for (int cols : colsFor(type)) {
      int rows = 9;
      Tensor w = RandomTensors.random(type, rows, cols, rnd);
      for (int r = 0; r < rows; r++) {
        float[] dst = new float[cols + 6];
        Arrays.fill(dst, -7f);
        w.dequantizeRow(r, dst, 3);
        for (int c = 0; c < cols; c++) {
          assertThat(Float.floatToRawIntBits(dst[3 + c]))
              .isEqualTo(Float.floatToRawIntBits(w.get(r, c)));
        }
        assertThat(dst[0]).isEqualTo(-7f);
        assertThat(dst[cols + 3]).isEqualTo(-7f);
      }
    }
  }

  @Test
  void badArgumentsAreRejected() {
    Tensor w = RandomTensors.random(DType.F32, 4, 8, new Random(1));
    assertThatThrownBy(() -> w.matmul(new float[8], 0, new float[4], 0, 4))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> w.matmul(new float[15], 2, new float[8], 0, 4))
        .isInstanceOf(IndexOutOfBoundsException.class);
    assertThatThrownBy(() -> w.matmul(new float[16], 2, new float[7], 0, 4))
        .isInstanceOf(IndexOutOfBoundsException.class);
    assertThatThrownBy(() -> w.matmul(new float[8], 1, new float[4], 2, 5))
        .isInstanceOf(IndexOutOfBoundsException.class);
    assertThatThrownBy(() -> w.get(4, 0)).isInstanceOf(IndexOutOfBoundsException.class);
    assertThatThrownBy(() -> w.dequantizeRow(0, new float[8], 1))
        .isInstanceOf(IndexOutOfBoundsException.class);
  }
}
