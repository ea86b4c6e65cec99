package io.kvant.engine.forward;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.SplittableRandom;
import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;

class ExpTest {
  private static final int LANES = FloatVector.SPECIES_PREFERRED.length();

  @Test
  void expIsWithinTwoUlpsOfMathExpAcrossItsRange() {
    SplittableRandom r = new SplittableRandom(1);
    for (int i = 0; i < 400_000; i++) {
      float x = i < 200_000 ? -87.3f + 175.3f * i / 200_000 : (float) (r.nextDouble() * -87.3);
      assertWithinUlps(x, Exp.exp(x), 2);
    }
    for (float x : new float[] {0f, -0f, -1e-30f, 1e-30f, -0.3465f, 0.3466f, -87.33f, 88f}) {
      assertWithinUlps(x, Exp.exp(x), 2);
    }
    assertThat(Exp.exp(0f)).isEqualTo(1f);
  }

  @Test
  void expFlushesBelowTheNormalRangeAndKeepsNaN() {
    assertThat(Exp.exp(-87.5f)).isZero();
    assertThat(Exp.exp(-1000f)).isZero();
    assertThat(Exp.exp(Float.NEGATIVE_INFINITY)).isZero();
    assertThat(Exp.exp(Float.NaN)).isNaN();
    assertThat(Exp.exp(1000f)).isEqualTo(Exp.exp(88f)).isFinite();
  }

  @Test
  void vectorExpIsBitwiseTheScalarOne() {
    SplittableRandom r = new SplittableRandom(2);
    float[] x = new float[LANES * 4096];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) (r.nextDouble() * 200 - 110); // both clamps and the flush
    }
    x[3] = Float.NaN;
    x[5] = Float.NEGATIVE_INFINITY;
    x[7] = -0f;
    float[] y = new float[x.length];
    for (int i = 0; i < x.length; i += LANES) {
      Exp.exp(FloatVector.fromArray(FloatVector.SPECIES_PREFERRED, x, i)).intoArray(y, i);
    }
    for (int i = 0; i < x.length; i++) {
      assertThat(Float.floatToIntBits(y[i]))
          .as("x = %s", x[i])
          .isEqualTo(Float.floatToIntBits(Exp.exp(x[i])));
    }
  }

  private static void assertWithinUlps(float x, float got, int ulps) {
    float expected = (float) Math.exp(x);
    if (expected < Float.MIN_NORMAL) {
      assertThat(got).as("exp(%s)", x).isLessThanOrEqualTo(Float.MIN_NORMAL * 1.5f);
      return;
    }
    assertThat(Math.abs(Float.floatToIntBits(got) - Float.floatToIntBits(expected)))
        .as("exp(%s) = %s, Math.exp gives %s", x, got, expected)
        .isLessThanOrEqualTo(ulps);
  }
}
