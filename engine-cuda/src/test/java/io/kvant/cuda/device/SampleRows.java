package io.kvant.cuda.device;

import java.util.SplittableRandom;

/**
 * Rows of logits of every shape the sampling kernel's threshold search meets, with the settings to
 * draw each under: spread and peaked logits, heavy ties, masked ({@code -inf}) and NaN tokens, an
 * outlier that stretches the first bins, one value everywhere; top-k, top-p, min-p and their
 * combinations.
 */
public record SampleRows(
    int rows,
    int vocab,
    float[] logits,
    float[] temp,
    int[] topK,
    float[] topP,
    float[] minP,
    long[] seeds) {
  /** How many row shapes there are; row {@code r} has shape {@code r % SHAPES}. */
  public static final int SHAPES = 8;

  /** {@code rows} random rows of {@code vocab} logits. */
  public static SampleRows random(SplittableRandom rnd, int rows, int vocab) {
    int[] ks = {0, 1, 40, 5000};
    double[] ps = {1.0, 0.9, 0.5, 0.999};
    float[] mps = {0f, 0f, 0.05f, 0.3f};
    float[] temps = {0.7f, 1.0f, 1.3f};
    float[] logits = new float[rows * vocab];
    float[] temp = new float[rows];
    int[] topK = new int[rows];
    float[] topP = new float[rows];
    float[] minP = new float[rows];
    long[] seeds = new long[rows];
    for (int r = 0; r < rows; r++) {
      int off = r * vocab;
      int shape = r % SHAPES;
      for (int i = 0; i < vocab; i++) {
        double g = gaussian(rnd);
        logits[off + i] =
            switch (shape) {
              case 0 -> (float) g;
              case 1 -> (float) (3 * g);
              case 2 -> (float) (Math.round(2 * g) / 2.0); // a handful of values, heavy ties
              case 3 -> rnd.nextInt(10) < 3 ? Float.NEGATIVE_INFINITY : (float) g;
              case 4 -> rnd.nextInt(100) == 0 ? Float.NaN : (float) (2 * g);
              case 5 -> i == 7 ? -1e30f : (float) g; // one outlier: the first bins span 1e30
              case 6 -> 0.25f; // one value everywhere
              default -> (float) g;
            };
      }
      if (shape == 7 || shape == 1) {
        for (int j = 0; j < 3; j++) {
          logits[off + rnd.nextInt(vocab)] = 8f + 4 * j; // peaked: a few tokens hold the mass
        }
      }
      temp[r] = temps[rnd.nextInt(temps.length)];
      topK[r] = ks[(r / SHAPES) % ks.length];
      topP[r] = (float) ps[(r / SHAPES / ks.length + r) % ps.length];
      minP[r] = mps[(r / SHAPES + 3 * r) % mps.length];
      seeds[r] = rnd.nextLong();
    }
    return new SampleRows(rows, vocab, logits, temp, topK, topP, minP, seeds);
  }

  /**
   * Checks one draw per row against {@link SampleReference#landing}; returns how many rows allowed
   * exactly one id, or throws naming the first row whose id is not allowed.
   */
  public int check(int[] ids) {
    int exact = 0;
    for (int r = 0; r < rows; r++) {
      int off = r * vocab;
      SampleReference.Landing where =
          SampleReference.landing(logits, off, vocab, temp[r], topK[r], topP[r], minP[r], seeds[r]);
      if (!where.admits(logits, off, vocab, ids[r])) {
        throw new AssertionError(
            String.format(
                "row %d (shape %d, T %.1f, k %d, p %.3f, min-p %.2f): id %d, reference %s",
                r, r % SHAPES, temp[r], topK[r], topP[r], minP[r], ids[r], where));
      }
      if (where.low() == where.high()) {
        exact++;
      }
    }
    return exact;
  }

  private static double gaussian(SplittableRandom rnd) {
    double u = rnd.nextDouble();
    double v = rnd.nextDouble();
    return Math.sqrt(-2 * Math.log(1 - u)) * Math.cos(2 * Math.PI * v);
  }
}
