package io.kvant.cuda.device;

import java.util.Arrays;
import java.util.Comparator;

/**
 * Scalar reference of the {@code sample} kernel's rule, with every sum in double. A token is ranked
 * by {@code d = max - logit} (in float, as the kernel computes it); top-k keeps the tokens whose
 * {@code d} is at most the k-th smallest, top-p then keeps the smallest such prefix of the
 * survivors whose share of their softmax mass reaches {@code p}, min-p then the tokens at least
 * {@code minP} times as likely as the first, ties at every threshold all kept; the draw walks the
 * kept tokens in id order with {@code u = splitmix64(seed) >>> 40} scaled to [0, 1).
 */
public final class SampleReference {
  private SampleReference() {}

  /**
   * Where a correct kernel's draw may land for one row: ids {@code low..high}, each with {@code max
   * - logit <= widest}. The range allows for the kernel's float rounding: {@code u} moved by 2e-5
   * (of the kept mass) either way, and top-p's {@code p} and min-p's {@code minP} by 1e-5 of
   * themselves (the widest kept set with {@code p} up and {@code minP} down, the narrowest the
   * other way).
   */
  public record Landing(int low, int high, float widest) {
    /** Whether {@code id} is a draw this row allows. */
    public boolean admits(float[] x, int off, int vocab, int id) {
      if (id < low || id > high || id < 0 || id >= vocab) {
        return false;
      }
      return x[off + argmax(x, off, vocab)] - x[off + id] <= widest;
    }
  }

  /** The {@link Landing} of one row's draw with these settings and seed. */
  public static Landing landing(
      float[] x,
      int off,
      int vocab,
      float temperature,
      int topK,
      float topP,
      float minP,
      long seed) {
    double u = uniform(seed);
    double[][] variants =
        topP < 1 || minP > 0
            ? new double[][] {
              {topP < 1 ? topP * (1 - 1e-5) : 1, minP * (1 + 1e-5)},
              {topP < 1 ? topP * (1 + 1e-5) : 1, minP * (1 - 1e-5)}
            }
            : new double[][] {{1, 0}};
    int low = Integer.MAX_VALUE;
    int high = -1;
    float widest = Float.NEGATIVE_INFINITY;
    for (double[] v : variants) {
      float keep = keptUpTo(x, off, vocab, temperature, topK, Math.min(v[0], 1.0), v[1]);
      widest = Math.max(widest, keep);
      low = Math.min(low, pick(x, off, vocab, temperature, keep, Math.max(0, u - 2e-5)));
      high = Math.max(high, pick(x, off, vocab, temperature, keep, Math.min(0.9999999, u + 2e-5)));
    }
    return new Landing(low, high, widest);
  }

  public static long splitmix64(long z) {
    z += 0x9e3779b97f4a7c15L;
    z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
    z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
    return z ^ (z >>> 31);
  }

  /** The kernel's uniform draw in [0, 1) for {@code seed}. */
  public static double uniform(long seed) {
    return (float) (splitmix64(seed) >>> 40) * (1f / 16777216f);
  }

  /** Lowest id among the largest logits; NaN never wins. */
  static int argmax(float[] x, int off, int vocab) {
    int best = -1;
    for (int i = 0; i < vocab; i++) {
      float v = x[off + i];
      if (!Float.isNaN(v) && (best < 0 || v > x[off + best])) {
        best = i;
      }
    }
    return Math.max(best, 0);
  }

  /**
   * The kept set of one row as its largest kept {@code d} ({@code +inf} keeps every non-NaN token),
   * for {@code topK <= 0} or {@code >= vocab} meaning no top-k, {@code topP >= 1} no top-p and
   * {@code minP <= 0} no min-p.
   */
  static float keptUpTo(
      float[] x, int off, int vocab, float temperature, int topK, double topP, double minP) {
    float max = x[off + argmax(x, off, vocab)];
    Integer[] order =
        java.util.stream.IntStream.range(0, vocab)
            .filter(i -> !Float.isNaN(x[off + i]))
            .boxed()
            .toArray(Integer[]::new);
    float[] d = new float[vocab];
    for (int i = 0; i < vocab; i++) {
      d[i] = max - x[off + i];
    }
    Arrays.sort(order, Comparator.comparingDouble(i -> d[i]));
    float keep = Float.POSITIVE_INFINITY;
    if (topK > 0 && topK < vocab && order.length >= topK) {
      keep = d[order[topK - 1]];
    }
    if (topP < 1) {
      float invT = 1f / temperature;
      double z = 0;
      for (Integer i : order) {
        if (d[i] <= keep) {
          z += weight(d[i], invT);
        }
      }
      double cum = 0;
      for (Integer i : order) {
        if (d[i] > keep) {
          break;
        }
        cum += weight(d[i], invT);
        if (cum >= topP * z) {
          keep = d[i];
          break;
        }
      }
    }
    if (minP > 0) {
      float invT = 1f / temperature;
      float last = d[order[0]];
      for (Integer i : order) {
        if (d[i] > keep || weight(d[i], invT) < minP) {
          break;
        }
        last = d[i];
      }
      keep = last;
    }
    return keep;
  }

  /**
   * The id the draw lands on for a uniform {@code u} in [0, 1): the first kept token, in id order,
   * whose running mass passes {@code u} times the kept mass (the last kept token with mass when
   * rounding leaves none).
   */
  static int pick(float[] x, int off, int vocab, float temperature, float keptUpTo, double u) {
    float max = x[off + argmax(x, off, vocab)];
    float invT = 1f / temperature;
    double total = 0;
    for (int i = 0; i < vocab; i++) {
      float d = max - x[off + i];
      if (d <= keptUpTo) {
        total += weight(d, invT);
      }
    }
    double target = u * total;
    double cum = 0;
    int last = -1;
    for (int i = 0; i < vocab; i++) {
      float d = max - x[off + i];
      if (d <= keptUpTo) {
        double w = weight(d, invT);
        if (w > 0) {
          last = i;
          cum += w;
          if (target < cum) {
            return i;
          }
        }
      }
    }
    return last;
  }

  private static double weight(float d, float invT) {
    return Math.exp(-(double) (d * invT));
  }
}
