package io.kvant.engine.tensor.packed;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The vector quantization of activations against its scalar reference, bit for bit: codes, scales,
 * pair codes, nibble codes and block sums, on random inputs of several magnitudes, and on blocks
 * that stress the rounding and the clamp (all zero, values at exactly half a step, one huge value,
 * subnormals, negative zeros).
 */
class QuantizedInputTest {
  @Test
  void vectorBlocksEqualTheScalarReference() {
    Random rnd = new Random(17);
    for (int cols : new int[] {32, 64, 96, 576, 1536}) {
      for (int batch : new int[] {1, 3, 16}) {
        for (int trial = 0; trial < 4; trial++) {
          float[] x = new float[batch * cols];
          for (int i = 0; i < x.length; i++) {
            x[i] = value(rnd, trial);
          }
          same(x, batch, cols);
        }
      }
    }
  }

  @Test
  void edgeBlocksEqualTheScalarReference() {
    int cols = 7 * QuantizedInput.BLOCK;
    float[] x = new float[cols];
    // block 0: all zero (scale 0); block 1: negative zeros
    Arrays.fill(x, 32, 64, -0f);
    // block 2: max 127 so the step is 1, and values at exactly half a step either side
    for (int j = 0; j < 32; j++) {
      x[64 + j] = j == 0 ? 127f : (j % 2 == 0 ? 1f : -1f) * (j / 2 + 0.5f);
    }
    // block 3: one huge value, the rest tiny; block 4: subnormals
    x[96] = 3e38f;
    for (int j = 1; j < 32; j++) {
      x[96 + j] = 1e-30f * j;
      x[128 + j] = Float.MIN_VALUE * j * (j % 2 == 0 ? 1 : -1);
    }
    // block 5: every value -amax (codes -127 everywhere: the pairs' differences wrap)
    Arrays.fill(x, 160, 192, -2.5f);
    // block 6: alternating +-amax
    for (int j = 0; j < 32; j++) {
      x[192 + j] = j % 2 == 0 ? 9f : -9f;
    }
    same(x, 1, cols);
  }

  /**
   * Blocks filled piecewise after {@code begin} (random disjoint ranges, in random order, as the
   * forward pass's threads fill them, over a buffer left dirty by a larger earlier quantization)
   * equal one whole {@code quantize}.
   */
  @Test
  void blocksFilledPiecewiseEqualOneQuantization() {
    Random rnd = new Random(23);
    for (int cols : new int[] {32, 576, 1536}) {
      int batch = 16;
      float[] x = new float[batch * cols];
      for (int i = 0; i < x.length; i++) {
        x[i] = value(rnd, i % 4);
      }
      QuantizedInput piecewise = new QuantizedInput();
      float[] dirty = new float[2 * x.length];
      Arrays.fill(dirty, 3f);
      piecewise.quantize(dirty, 2 * batch, cols);
      piecewise.begin(batch, cols);
      int blocks = batch * cols / QuantizedInput.BLOCK;
      int[] cuts = rnd.ints(5, 0, blocks + 1).sorted().toArray();
      int[] bounds = new int[cuts.length + 2];
      System.arraycopy(cuts, 0, bounds, 1, cuts.length);
      bounds[bounds.length - 1] = blocks;
      for (int k = bounds.length - 2; k >= 0; k--) {
        piecewise.quantizeBlocks(x, bounds[k], bounds[k + 1]);
      }
      QuantizedInput whole = new QuantizedInput();
      whole.quantize(x, batch, cols);
      int n = batch * cols;
      assertThat(piecewise.batch()).isEqualTo(batch);
      assertThat(Arrays.copyOf(piecewise.codes(), n)).isEqualTo(Arrays.copyOf(whole.codes(), n));
      assertThat(Arrays.copyOf(piecewise.scales(), n / 32))
          .isEqualTo(Arrays.copyOf(whole.scales(), n / 32));
      assertThat(Arrays.copyOf(piecewise.pairCodes(), n / 2))
          .isEqualTo(Arrays.copyOf(whole.pairCodes(), n / 2));
      assertThat(Arrays.copyOf(piecewise.nibbleCodes(), n / 2))
          .isEqualTo(Arrays.copyOf(whole.nibbleCodes(), n / 2));
      assertThat(Arrays.copyOf(piecewise.splatCodes(), n))
          .isEqualTo(Arrays.copyOf(whole.splatCodes(), n));
      assertThat(Arrays.copyOf(piecewise.blockSums(), n / 32))
          .isEqualTo(Arrays.copyOf(whole.blockSums(), n / 32));
    }
  }

  private static float value(Random rnd, int trial) {
    return switch (trial) {
      case 0 -> (float) rnd.nextGaussian();
      case 1 -> (float) (rnd.nextGaussian() * 1e4);
      case 2 -> (float) (rnd.nextGaussian() * 1e-6);
      default -> rnd.nextInt(8) == 0 ? (float) rnd.nextGaussian() * 50 : rnd.nextInt(255) - 127;
    };
  }

  private static void same(float[] x, int batch, int cols) {
    QuantizedInput v = new QuantizedInput();
    QuantizedInput r = new QuantizedInput();
    v.quantize(x, batch, cols);
    r.quantizeReference(x, batch, cols);
    String what = batch + "x" + cols;
    int n = batch * cols;
    assertThat(Arrays.copyOf(v.codes(), n)).as(what).isEqualTo(Arrays.copyOf(r.codes(), n));
    assertThat(Arrays.copyOf(v.scales(), n / 32))
        .as(what)
        .isEqualTo(Arrays.copyOf(r.scales(), n / 32));
    assertThat(Arrays.copyOf(v.pairCodes(), n / 2))
        .as(what)
        .isEqualTo(Arrays.copyOf(r.pairCodes(), n / 2));
    assertThat(Arrays.copyOf(v.nibbleCodes(), n / 2))
        .as(what)
        .isEqualTo(Arrays.copyOf(r.nibbleCodes(), n / 2));
    assertThat(Arrays.copyOf(v.splatCodes(), n))
        .as(what)
        .isEqualTo(Arrays.copyOf(r.splatCodes(), n));
    for (int i = 0; i < n; i++) {
      int splat = r.splatCodes()[i];
      assertThat((short) splat).as(what).isEqualTo(r.codes()[i]);
      assertThat((short) (splat >> 16)).as(what).isEqualTo(r.codes()[i]);
    }
    assertThat(Arrays.copyOf(v.blockSums(), n / 32))
        .as(what)
        .isEqualTo(Arrays.copyOf(r.blockSums(), n / 32));
  }
}
