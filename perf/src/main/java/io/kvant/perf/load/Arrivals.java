package io.kvant.perf.load;

import java.util.random.RandomGenerator;

/**
 * Inter-arrival times of an open-loop load: gamma-distributed with shape {@code burstiness} and
 * mean {@code 1 / rate}, so {@code burstiness = 1} is a Poisson process, smaller values are
 * burstier (coefficient of variation {@code 1 / sqrt(burstiness)}) and larger ones more regular;
 * the knob vLLM's {@code bench serve} exposes. An infinite rate sends every request at once.
 *
 * <p>Gamma variates by Marsaglia and Tsang's method (ACM TOMS 26(3), 2000), with the {@code
 * U^(1/a)} boost for shapes below one. Not thread-safe.
 */
public final class Arrivals {
  private final double rate;
  private final double burstiness;
  private final RandomGenerator rnd;

  /**
   * @param rate mean requests per second ({@code > 0}, may be infinite)
   * @param burstiness gamma shape ({@code > 0})
   */
  public Arrivals(double rate, double burstiness, RandomGenerator rnd) {
    if (!(rate > 0)) {
      throw new IllegalArgumentException("--rate must be > 0, got " + rate);
    }
    if (!(burstiness > 0) || Double.isInfinite(burstiness)) {
      throw new IllegalArgumentException("--burstiness must be > 0, got " + burstiness);
    }
    this.rate = rate;
    this.burstiness = burstiness;
    this.rnd = rnd;
  }

  /** The next gap in seconds ({@code 0} at an infinite rate). */
  public double nextGapSeconds() {
    if (Double.isInfinite(rate)) {
      return 0;
    }
    double theta = 1.0 / (rate * burstiness);
    return gamma(burstiness) * theta;
  }

  private double gamma(double shape) {
    if (shape < 1) {
      double u = rnd.nextDouble();
      return gamma(shape + 1) * Math.pow(u, 1.0 / shape);
    }
    double d = shape - 1.0 / 3.0;
    double c = 1.0 / Math.sqrt(9.0 * d);
    for (int attempt = 0; attempt < 10_000; attempt++) {
      double x = rnd.nextGaussian();
      double v = 1 + c * x;
      if (v <= 0) {
        continue;
      }
      v = v * v * v;
      double u = rnd.nextDouble();
      if (u < 1 - 0.0331 * x * x * x * x || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) {
        return d * v;
      }
    }
    return shape; // practically unreachable (acceptance rate > 95%)
  }
}
