package io.kvant.engine.forward;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.engine.tensor.ComputePool;
import io.kvant.engine.tensor.DType;
import io.kvant.engine.tensor.Tensor;
import io.kvant.engine.tensor.packed.PackedMatrix;
import io.kvant.engine.tensor.packed.QuantizedInput;
import java.lang.foreign.Arena;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class LinearGrainTest {
  @Test
  void oneRowProductsGoOutInFourPanelUnitsOnlyWhenEveryThreadGetsOne() {
    try (ComputePool two = new ComputePool(2);
        ComputePool three = new ComputePool(3)) {
      assertThat(Linear.grain(1, 8, two)).isEqualTo(4);
      assertThat(Linear.grain(1, 7, two)).isEqualTo(1);
      assertThat(Linear.grain(1, 11, three)).isEqualTo(1);
      assertThat(Linear.grain(1, 12, three)).isEqualTo(4);
      assertThat(Linear.grain(2, 100, two)).isEqualTo(1);
    }
  }

  /**
   * Whatever the team and the grain, each output is computed by the same kernel over the same
   * panel: the same bits as one thread, for one row (four-panel units at two and three threads,
   * single panels at seven) and for two rows.
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
      int panels = linear.packed.panels();
      assertThat(Linear.grain(1, panels, two)).isEqualTo(4);
      assertThat(Linear.grain(1, panels, seven)).isEqualTo(1);
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
