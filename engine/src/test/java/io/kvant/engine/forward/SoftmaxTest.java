package io.kvant.engine.forward;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.SplittableRandom;
import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;

class SoftmaxTest {
  private static final int LANES = FloatVector.SPECIES_PREFERRED.length();

  @Test
  void softmaxIsBitwiseItsScalarModelAndCloseToDoublePrecision() {
    SplittableRandom r = new SplittableRandom(3);
    for (int len = 1; len <= 5 * LANES + 3; len++) {
      for (int trial = 0; trial < 20; trial++) {
        float[] s = new float[len];
        for (int t = 0; t < len; t++) {
          s[t] = (float) (r.nextGaussian() * (trial % 2 == 0 ? 3 : 40));
        }
        float scale = 0.125f;
        float[] kernel = s.clone();
        float[] model = s.clone();
        Softmax.inPlace(kernel, 0, len, scale);
        Softmax.softmaxReference(model, len, scale);
        double max = Double.NEGATIVE_INFINITY;
        for (float v : s) {
          max = Math.max(max, (double) (v * scale));
        }
        double sum = 0;
        for (float v : s) {
          sum += Math.exp((double) (v * scale) - max);
        }
        double total = 0;
        for (int t = 0; t < len; t++) {
          assertThat(Float.floatToIntBits(kernel[t]))
              .as("len %d, t %d", len, t)
              .isEqualTo(Float.floatToIntBits(model[t]));
          double exact = Math.exp((double) (s[t] * scale) - max) / sum;
          assertThat((double) kernel[t])
              .isCloseTo(exact, org.assertj.core.data.Offset.offset(1e-6 + 1e-5 * exact));
          total += kernel[t];
        }
        assertThat(total).isCloseTo(1.0, org.assertj.core.data.Offset.offset(1e-5));
      }
    }
  }

  @Test
  void softmaxAtAnOffsetLeavesTheRestAlone() {
    SplittableRandom r = new SplittableRandom(4);
    int len = 3 * LANES + 5;
    float[] s = new float[len + 2 * LANES + 7];
    for (int i = 0; i < s.length; i++) {
      s[i] = (float) r.nextGaussian();
    }
    int off = LANES + 3;
    float[] alone = java.util.Arrays.copyOfRange(s, off, off + len);
    float[] before = s.clone();
    Softmax.inPlace(s, off, len, 0.3f);
    Softmax.inPlace(alone, 0, len, 0.3f);
    for (int i = 0; i < s.length; i++) {
      float expected = i >= off && i < off + len ? alone[i - off] : before[i];
      assertThat(Float.floatToIntBits(s[i]))
          .as("index %d", i)
          .isEqualTo(Float.floatToIntBits(expected));
    }
  }

  @Test
  void softmaxOfOneScoreIsOneAndEqualScoresShareEvenly() {
    float[] one = {42f};
    Softmax.inPlace(one, 0, 1, 0.5f);
    assertThat(one[0]).isEqualTo(1f);
    float[] even = new float[3 * LANES + 1];
    java.util.Arrays.fill(even, -7f);
    Softmax.inPlace(even, 0, even.length, 1f);
    for (float v : even) {
      assertThat((double) v)
          .isCloseTo(1.0 / even.length, org.assertj.core.data.Offset.offset(1e-7));
    }
  }

  @Test
  void aReusedLaneScratchGivesTheSameBitsWhateverItHeld() {
    SplittableRandom r = new SplittableRandom(9);
    float[] lanes = new float[Softmax.lanes()];
    for (int len : new int[] {1, LANES - 1, LANES, 2 * LANES + 3, 40 * LANES + 1}) {
      float[] s = new float[len];
      for (int i = 0; i < len; i++) {
        s[i] = (float) (r.nextGaussian() * 4);
      }
      java.util.Arrays.fill(lanes, 1e30f); // stale contents must not leak into the sum
      float[] reused = s.clone();
      Softmax.inPlace(reused, 0, len, 0.7f, lanes);
      float[] fresh = s.clone();
      Softmax.inPlace(fresh, 0, len, 0.7f);
      float[] model = s.clone();
      Softmax.softmaxReference(model, len, 0.7f);
      assertThat(reused).as("len %d", len).containsExactly(fresh).containsExactly(model);
    }
  }
}
