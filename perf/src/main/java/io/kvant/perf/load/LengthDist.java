package io.kvant.perf.load;

import java.util.random.RandomGenerator;

/**
 * A distribution of lengths (prompt words or output tokens): {@code fixed:N} or {@code uniform:A:B}
 * (inclusive).
 */
public sealed interface LengthDist {
  /** Draws a length. */
  int sample(RandomGenerator rnd);

  /** The mean length. */
  double mean();

  /** Always {@code n}. */
  record Fixed(int n) implements LengthDist {
    public Fixed {
      if (n < 1) {
        throw new IllegalArgumentException("length must be >= 1, got " + n);
      }
    }

    @Override
    public int sample(RandomGenerator rnd) {
      return n;
    }

    @Override
    public double mean() {
      return n;
    }

    @Override
    public String toString() {
      return "fixed:" + n;
    }
  }

  /** Uniform on {@code [min, max]}. */
  record Uniform(int min, int max) implements LengthDist {
    public Uniform {
      if (min < 1 || max < min) {
        throw new IllegalArgumentException("uniform needs 1 <= min <= max, got " + min + ":" + max);
      }
    }

    @Override
    public int sample(RandomGenerator rnd) {
      return rnd.nextInt(min, max + 1);
    }

    @Override
    public double mean() {
      return (min + max) / 2.0;
    }

    @Override
    public String toString() {
      return "uniform:" + min + ":" + max;
    }
  }

  /**
   * Parses {@code fixed:N}, {@code N}, or {@code uniform:A:B}.
   *
   * @throws IllegalArgumentException on anything else
   */
  public static LengthDist parse(String spec) {
    String[] p = spec.split(":");
    try {
      if (p.length == 1) {
        return new Fixed(Integer.parseInt(p[0]));
      }
      if (p.length == 2 && p[0].equals("fixed")) {
        return new Fixed(Integer.parseInt(p[1]));
      }
      if (p.length == 3 && p[0].equals("uniform")) {
        return new Uniform(Integer.parseInt(p[1]), Integer.parseInt(p[2]));
      }
    } catch (NumberFormatException e) {
      // fall through
    }
    throw new IllegalArgumentException(
        "length spec '" + spec + "': use fixed:N or uniform:MIN:MAX");
  }
}
