package io.kvant.engine.forward;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.engine.tensor.ComputePool;
import io.kvant.engine.tensor.DType;
import io.kvant.engine.tensor.Tensor;
import io.kvant.engine.tensor.packed.PackedMatrix;
import io.kvant.engine.tensor.packed.QuantizedInput;
import java.lang.foreign.Arena;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class LinearSplitTest {
  /**
   * However the team splits a product's panels, each output is computed by the same kernel over the
   * same panel: the same bits on two, three and seven threads as on one, for one row (where the
   * one-row passes take up to four panels at a time, so a split can change which pass runs) and for
   * two rows.
   */
  @ParameterizedTest
  @EnumSource(
      value = DType.class,
      names = {"Q4_0", "Q8_0"})
  void theSplitNeverChangesAProduct(DType type) {
    int rows = 16 * PackedMatrix.PANEL + 5;
    int cols = 1024;
    Random rnd = new Random(32);
    try (Arena arena = Arena.ofConfined();
        ComputePool one = new ComputePool(1);
        ComputePool two = new ComputePool(2);
        ComputePool three = new ComputePool(3);
        ComputePool seven = new ComputePool(7)) {
      Tensor t = RandomQ8.tensor(arena, type, rows, cols, rnd);
      Linear linear = Linear.of(t, MatmulKernels.INTEGER, new WeightPacks(), one);
      assertThat(linear.integer()).isTrue();
      for (int n = 1; n <= 2; n++) {
        float[] x = new float[n * cols];
        for (int i = 0; i < x.length; i++) {
          x[i] = (float) rnd.nextGaussian();
        }
        QuantizedInput xq = new QuantizedInput();
        xq.quantize(x, n, cols);
        float[] want = new float[n * rows];
        linear.apply(one, x, xq, n, want);
        for (ComputePool pool : new ComputePool[] {two, three, seven}) {
          float[] got = new float[n * rows];
          linear.apply(pool, x, xq, n, got);
          assertThat(got).as("%d rows on %d threads", n, pool.threads()).isEqualTo(want);
        }
      }
    }
  }
}
