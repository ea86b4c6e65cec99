package io.kvant.engine.tensor;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The batched micro-kernels of {@link DotKernel} against the batch-1 path and the scalar model
 * {@link DotKernel#dotReference}: every output element must be bitwise the same whatever the batch
 * size (so whichever 4x4, 4x2, 4x1 or one-row kernel computes it), row range or tile position.
 */
class BatchedMatmulExactnessTest {
  private static final int[] BATCHES = {1, 2, 3, 4, 5, 6, 7, 8, 9, 16};

  /**
   * Awkward shapes: rows not a multiple of 4, cols with and without a vector tail, and one past two
   * column chunks ({@link DotKernel#KC}), so that accumulators are parked and resumed.
   */
  private static int[][] shapes(DType type) {
    int k = type.blockSize();
    int chunks = (2 * DotKernel.KC + 3 * k) / k * k;
    return type.isBlockType()
        ? new int[][] {
          {1, k}, {5, 2 * k}, {7, 3 * k}, {13, 5 * k}, {18, 9 * k}, {33, k}, {6, chunks}
        }
        : new int[][] {
          {1, 1},
          {3, 15},
          {5, 16},
          {7, 17},
          {13, 100},
          {18, 257},
          {33, 48},
          {6, 2 * DotKernel.KC + 77}
        };
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void everyBatchRowEqualsBatchOneBitwise(DType type) {
    Random rnd = new Random(101 + type.ordinal());
    for (int[] shape : shapes(type)) {
      int rows = shape[0];
      int cols = shape[1];
      Tensor w = RandomTensors.random(type, rows, cols, rnd);
      for (int batch : BATCHES) {
        float[] x = RandomTensors.randomInput(batch * cols, rnd);
        float[] out = new float[batch * rows];
        w.matmul(x, batch, out);
        for (int b = 0; b < batch; b++) {
          float[] one = new float[rows];
          w.matmul(Arrays.copyOfRange(x, b * cols, (b + 1) * cols), 1, one);
          assertThat(Arrays.copyOfRange(out, b * rows, (b + 1) * rows))
              .as("%s %dx%d batch=%d b=%d", type, rows, cols, batch, b)
              .isEqualTo(one);
        }
      }
    }
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void kernelsMatchScalarModelBitwise(DType type) {
    Random rnd = new Random(202 + type.ordinal());
    for (int[] shape : shapes(type)) {
      int rows = shape[0];
      int cols = shape[1];
      Tensor w = RandomTensors.random(type, rows, cols, rnd);
      float[] decoded = new float[rows * cols];
      for (int r = 0; r < rows; r++) {
        w.dequantizeRow(r, decoded, r * cols);
      }
      for (int batch : new int[] {1, 3, 4, 7, 16}) {
        float[] x = RandomTensors.randomInput(batch * cols, rnd);
        float[] out = new float[batch * rows];
        w.matmul(x, batch, out);
        for (int b = 0; b < batch; b++) {
          for (int r = 0; r < rows; r++) {
            float ref = DotKernel.dotReference(decoded, r * cols, cols, x, b * cols);
            assertThat(Float.floatToRawIntBits(out[b * rows + r]))
                .as("%s %dx%d batch=%d b=%d r=%d", type, rows, cols, batch, b, r)
                .isEqualTo(Float.floatToRawIntBits(ref));
          }
        }
      }
    }
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void randomRowRangesAndBatchesAgree(DType type) {
    Random rnd = new Random(303 + type.ordinal());
    for (int trial = 0; trial < 12; trial++) {
      int rows = 1 + rnd.nextInt(40);
      int cols =
          type.isBlockType() ? type.blockSize() * (1 + rnd.nextInt(6)) : 1 + rnd.nextInt(130);
      int batch = 1 + rnd.nextInt(17);
      Tensor w = RandomTensors.random(type, rows, cols, rnd);
      float[] x = RandomTensors.randomInput(batch * cols, rnd);
      float[] full = new float[batch * rows];
      w.matmul(x, batch, full);
      float[] pieced = new float[batch * rows];
      for (int start = 0; start < rows; ) {
        int end = Math.min(rows, start + 1 + rnd.nextInt(9));
        w.matmul(x, batch, pieced, start, end);
        start = end;
      }
      assertThat(pieced).as("%s %dx%d batch=%d", type, rows, cols, batch).isEqualTo(full);
      for (int b = 0; b < batch; b++) {
        float[] one = new float[rows];
        w.matmul(Arrays.copyOfRange(x, b * cols, (b + 1) * cols), 1, one);
        assertThat(Arrays.copyOfRange(full, b * rows, (b + 1) * rows)).isEqualTo(one);
      }
    }
  }
}
