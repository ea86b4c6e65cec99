package io.kvant.perf.load;

import java.util.Arrays;

/**
 * Order statistics with linear interpolation between closest ranks (NumPy's default {@code
 * percentile}, which vLLM's benchmark uses): the {@code p}-th percentile of sorted {@code x[0..n)}
 * is at rank {@code r = p / 100 * (n - 1)}, i.e. {@code x[floor r] + (r - floor r) * (x[floor r +
 * 1] - x[floor r])}.
 */
public final class Percentiles {
  private Percentiles() {}

  /**
   * The {@code p}-th percentile of an already sorted array.
   *
   * @throws IllegalArgumentException if empty or {@code p} outside [0, 100]
   */
  public static double ofSorted(double[] sorted, double p) {
    if (sorted.length == 0) {
      throw new IllegalArgumentException("no samples");
    }
    if (!(p >= 0 && p <= 100)) {
      throw new IllegalArgumentException("percentile must be in [0, 100], got " + p);
    }
    double rank = p / 100 * (sorted.length - 1);
    int lo = (int) Math.floor(rank);
    int hi = Math.min(sorted.length - 1, lo + 1);
    return sorted[lo] + (rank - lo) * (sorted[hi] - sorted[lo]);
  }

  /** The {@code p}-th percentile of unsorted samples (copied, not modified). */
  public static double of(double[] samples, double p) {
    double[] s = samples.clone();
    Arrays.sort(s);
    return ofSorted(s, p);
  }
}
