package io.kvant.engine.forward;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.util.SplittableRandom;
import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;

class SwiGluTest {
  private static final int LANES = FloatVector.SPECIES_PREFERRED.length();

  @Test
  void everyElementIsItsScalarFormWhereverItFallsAndCloseToDoublePrecision() {
    SplittableRandom r = new SplittableRandom(5);
    for (int n = 1; n <= 4 * LANES + 3; n++) {
      for (int start : new int[] {0, 1, LANES - 1}) {
        float[] gate = new float[start + n + 2];
        float[] up = new float[gate.length];
        for (int i = 0; i < gate.length; i++) {
          gate[i] = (float) (r.nextGaussian() * (i % 3 == 0 ? 20 : 2));
          up[i] = (float) r.nextGaussian();
        }
        float[] before = gate.clone();
        SwiGlu.apply(gate, up, start, start + n);
        for (int i = 0; i < gate.length; i++) {
          if (i < start || i >= start + n) {
            assertThat(gate[i]).as("outside the range, index %d", i).isEqualTo(before[i]);
            continue;
          }
          assertThat(Float.floatToIntBits(gate[i]))
              .as("n %d start %d index %d", n, start, i)
              .isEqualTo(Float.floatToIntBits(SwiGlu.one(before[i], up[i])));
          double g = before[i];
          double exact = g / (1 + Math.exp(-g)) * up[i];
          assertThat((double) gate[i]).isCloseTo(exact, within(1e-6 + 1e-6 * Math.abs(exact)));
        }
      }
    }
  }

  @Test
  void extremesStayFinite() {
    assertThat(SwiGlu.one(0f, 3f)).isZero();
    assertThat(SwiGlu.one(-1000f, 1f)).isCloseTo(0f, within(1e-30f));
    assertThat(SwiGlu.one(1000f, 2f)).isEqualTo(2000f);
    assertThat(SwiGlu.one(Float.NaN, 1f)).isNaN();
  }
}
