package io.kvant.perf.load;

import java.util.Arrays;

/**
 * Summary of one latency metric, in milliseconds; all zero when {@code count == 0}.
 *
 * @param count samples
 * @param mean arithmetic mean
 * @param median 50th percentile
 * @param p90 90th percentile
 * @param p99 99th percentile
 * @param min smallest
 * @param max largest
 * @param cdf the 0th, 1st, ..., 100th percentiles (101 values; empty when no samples), for CDF
 *     plots
 */
public record LatencyStats(
    int count,
    double mean,
    double median,
    double p90,
    double p99,
    double min,
    double max,
    double[] cdf) {

  /** Summarises samples (not modified); percentiles as {@link Percentiles}. */
  public static LatencyStats of(double[] samples) {
    if (samples.length == 0) {
      return new LatencyStats(0, 0, 0, 0, 0, 0, 0, new double[0]);
    }
    double[] s = samples.clone();
    Arrays.sort(s);
    double sum = 0;
    for (double v : s) {
      sum += v;
    }
    double[] cdf = new double[101];
    for (int p = 0; p <= 100; p++) {
      cdf[p] = Percentiles.ofSorted(s, p);
    }
    return new LatencyStats(
        s.length,
        sum / s.length,
        Percentiles.ofSorted(s, 50),
        Percentiles.ofSorted(s, 90),
        Percentiles.ofSorted(s, 99),
        s[0],
        s[s.length - 1],
        cdf);
  }
}
