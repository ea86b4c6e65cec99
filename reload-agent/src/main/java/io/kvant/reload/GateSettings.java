package io.kvant.reload;

/**
 * Thresholds of the quality gate: a version passes when, over all positions of the golden prompts,
 * its greedy (top-1) choice agrees with its own full-precision weights at least {@code minTop1} of
 * the time, the mean KL divergence KL(full || quantized) is at most {@code maxMeanKl}, and no logit
 * is NaN or infinite.
 */
public record GateSettings(double minTop1, double maxMeanKl) {
  public GateSettings {
    if (!(minTop1 >= 0 && minTop1 <= 1)) {
      throw new IllegalArgumentException("min top-1 agreement must be in [0, 1], got " + minTop1);
    }
    if (!(maxMeanKl >= 0) || Double.isInfinite(maxMeanKl)) {
      throw new IllegalArgumentException("max mean KL must be a number >= 0, got " + maxMeanKl);
    }
  }

  public static GateSettings defaults() {
    return new GateSettings(0.9, 0.1);
  }
}
