package io.kvant.perf.synth;

/**
 * SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators", 2014): a
 * 64-bit state advanced by a golden-ratio increment and finalised by a mixing function. Fast and
 * good enough for synthetic weights; not for cryptography. Not thread-safe: one per stream.
 */
final class SplitMix64 {
  private long state;

  SplitMix64(long seed) {
    this.state = seed;
  }

  /** The finaliser alone: a well-mixed hash of {@code z}. */
  static long mix(long z) {
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return z ^ (z >>> 31);
  }

  long nextLong() {
    state += 0x9E3779B97F4A7C15L;
    return mix(state);
  }

  /**
   * An approximately standard normal value: the Irwin-Hall sum of four 16-bit uniforms from one
   * 64-bit draw, centred and scaled to unit variance (support ±3.46, kurtosis slightly below a
   * Gaussian's). One draw per value keeps generation of billions of weights fast.
   */
  float nextGaussianApprox() {
    long r = nextLong();
    int s =
        (int) (r & 0xFFFF)
            + (int) ((r >>> 16) & 0xFFFF)
            + (int) ((r >>> 32) & 0xFFFF)
            + (int) (r >>> 48);
    // Each term is uniform on [0, 65535]: mean 4 * 32767.5, variance 4 * (65536^2 - 1) / 12.
    return (float) ((s + 2.0 - 131072.0) * (1.7320508075688772 / 65536.0));
  }
}
