package io.kvant.engine.forward;

/** RMSNorm, as Llama defines it: {@code y = x / sqrt(mean(x^2) + eps) * w}. */
public final class Norms {
  private Norms() {}

  /**
   * Normalises {@code n} floats of {@code x} starting at {@code xOff} into {@code out} at {@code
   * outOff}, scaled by {@code weight}. {@code x} and {@code out} may be the same array.
   */
  public static void rmsNorm(
      float[] x, int xOff, float[] weight, float[] out, int outOff, int n, float eps) {
    float ss = 0f;
    for (int i = 0; i < n; i++) {
      float v = x[xOff + i];
      ss += v * v;
    }
    float inv = (float) (1.0 / Math.sqrt(ss / n + eps));
    for (int i = 0; i < n; i++) {
      out[outOff + i] = weight[i] * (x[xOff + i] * inv);
    }
  }
}
