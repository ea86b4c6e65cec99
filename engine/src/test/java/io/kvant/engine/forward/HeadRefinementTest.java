package io.kvant.engine.forward;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import io.kvant.engine.tensor.ComputePool;
import io.kvant.engine.tensor.Tensor;
import io.kvant.engine.tensor.packed.QuantizedInput;
import java.lang.foreign.Arena;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

class HeadRefinementTest {
  @Test
  void largestAgreesWithASortOnRandomValuesWithTiesAndNaN() {
    Random rnd = new Random(5);
    for (int len : new int[] {0, 1, 5, 31, 32, 33, 100, 1000, 4099}) {
      for (int trial = 0; trial < 20; trial++) {
        float[] v = new float[len + 3];
        for (int i = 0; i < v.length; i++) {
          // few distinct values: many ties; now and then a NaN or an infinity
          int pick = rnd.nextInt(100);
          v[i] =
              pick == 0
                  ? Float.NaN
                  : pick == 1 ? Float.NEGATIVE_INFINITY : (float) (rnd.nextInt(60) - 30) / 4;
        }
        int off = 3;
        int[] idx = new int[HeadRefinement.CANDIDATES];
        float[] val = new float[HeadRefinement.CANDIDATES];
        int k = HeadRefinement.largest(v, off, len, idx, val);

        assertThat(k).isEqualTo(Math.min(len, HeadRefinement.CANDIDATES));
        Set<Integer> seen = new HashSet<>();
        float[] chosen = new float[k];
        for (int i = 0; i < k; i++) {
          assertThat(idx[i]).isBetween(0, len - 1);
          assertThat(seen.add(idx[i])).as("index %d twice", idx[i]).isTrue();
          assertThat(Float.floatToIntBits(val[i])).isEqualTo(Float.floatToIntBits(v[off + idx[i]]));
          chosen[i] = val[i];
        }
        // The reference: the k largest by a full sort, NaN below every number.
        Float[] all = new Float[len];
        for (int i = 0; i < len; i++) {
          all[i] = v[off + i];
        }
        Arrays.sort(
            all, (a, b) -> a.isNaN() ? (b.isNaN() ? 0 : 1) : b.isNaN() ? -1 : Float.compare(b, a));
        float[] expected = new float[k];
        for (int i = 0; i < k; i++) {
          expected[i] = all[i];
        }
        Arrays.sort(chosen);
        Arrays.sort(expected);
        assertThat(chosen).as("length %d trial %d", len, trial).isEqualTo(expected);
      }
    }
  }

  @Test
  void refineGivesTheLargestLogitsTheFloatProductAndLeavesTheRestAlone() {
    Random rnd = new Random(9);
    try (Arena arena = Arena.ofShared()) {
      int rows = 300;
      int cols = 96;
      int n = 3;
      Tensor w = RandomQ8.tensor(arena, rows, cols, rnd);
      float[] x = gaussian(n * cols, rnd);
      float[] exact = new float[n * rows];
      w.matmulScalar(x, n, exact, 0, rows);
      float[] floatPath = new float[n * rows];
      w.matmul(x, n, floatPath);
      float[] out = new float[n * rows];
      for (int i = 0; i < out.length; i++) {
        out[i] = exact[i] + (float) rnd.nextGaussian() * 0.05f;
      }
      float[] before = out.clone();

      try (ComputePool pool = new ComputePool(2)) {
        new HeadRefinement(w).refine(pool, x, n, out);
      }

      for (int b = 0; b < n; b++) {
        int[] idx = new int[HeadRefinement.CANDIDATES];
        int k =
            HeadRefinement.largest(
                before, b * rows, rows, idx, new float[HeadRefinement.CANDIDATES]);
        Set<Integer> refined = new HashSet<>();
        for (int i = 0; i < k; i++) {
          refined.add(idx[i]);
        }
        for (int r = 0; r < rows; r++) {
          int o = b * rows + r;
          if (refined.contains(r)) {
            assertThat(out[o]).as("row %d input %d", r, b).isCloseTo(exact[o], within(1e-4f));
            // the float path's own bits, not only its value
            assertThat(out[o]).as("row %d input %d", r, b).isEqualTo(floatPath[o]);
          } else {
            assertThat(out[o]).as("row %d input %d", r, b).isEqualTo(before[o]);
          }
        }
      }
    }
  }

  @Test
  void theIntegerHeadChoosesTheFloatHeadsTokenAndCarriesItsLogit() {
    Random rnd = new Random(13);
    // shared: the pool's threads read the weights
    try (Arena arena = Arena.ofShared();
        ComputePool pool = new ComputePool(2)) {
      int rows = 2000;
      int cols = 128;
      int n = 4;
      Tensor w = RandomQ8.tensor(arena, rows, cols, rnd);
      WeightPacks packs = new WeightPacks();
      Linear integer = Linear.head(w, MatmulKernels.INTEGER, packs, pool);
      Linear reference = Linear.head(w, MatmulKernels.FLOAT, packs, pool);
      assertThat(integer.integer()).as("the head quantizes its own input").isFalse();
      QuantizedInput xq = new QuantizedInput();
      for (int trial = 0; trial < 10; trial++) {
        float[] x = gaussian(n * cols, rnd);
        float[] got = new float[n * rows];
        float[] want = new float[n * rows];
        integer.apply(pool, x, xq, n, got);
        reference.apply(pool, x, xq, n, want);
        for (int b = 0; b < n; b++) {
          int top = argmax(want, b * rows, rows);
          assertThat(argmax(got, b * rows, rows)).as("trial %d input %d", trial, b).isEqualTo(top);
          assertThat(got[b * rows + top]).isCloseTo(want[b * rows + top], within(1e-4f));
          assertThat(got[b * rows + top]).isEqualTo(want[b * rows + top]);
          // the rest: one int8 term of input, within its rounding: half a step per value
          for (int r = 0; r < rows; r++) {
            double bound = 1e-4;
            for (int c = 0; c < cols; c++) {
              bound += Math.abs(w.get(r, c)) * xq.scale(b, c / 32) / 2;
            }
            assertThat((double) got[b * rows + r]).isCloseTo(want[b * rows + r], within(bound));
          }
        }
      }
    }
  }

  private static int argmax(float[] v, int off, int len) {
    int at = 0;
    for (int i = 1; i < len; i++) {
      if (v[off + i] > v[off + at]) {
        at = i;
      }
    }
    return at;
  }

  private static float[] gaussian(int n, Random rnd) {
    float[] x = new float[n];
    for (int i = 0; i < n; i++) {
      x[i] = (float) rnd.nextGaussian();
    }
    return x;
  }
}
