package io.kvant.engine.forward;

import io.kvant.engine.model.RopeStyle;

/**
 * Precomputed rotary-embedding cosines and sines, {@code [position][pair]}, and the rotation.
 *
 * <p>Angles are computed in double and rounded once, so the table is as exact as float allows;
 * llama2.c computes them in float, which differs by an ulp or so and does not change outputs.
 */
public final class RopeTable {
  private final int half;
  private final float[] cos;
  private final float[] sin;
  private final RopeStyle style;

  /** Tables for {@code maxPositions} positions of heads {@code headSize} wide. */
  public RopeTable(int headSize, int maxPositions, double theta, RopeStyle style) {
    this.half = headSize / 2;
    this.style = style;
    this.cos = new float[maxPositions * half];
    this.sin = new float[maxPositions * half];
    for (int i = 0; i < half; i++) {
      double freq = Math.pow(theta, -2.0 * i / headSize);
      for (int p = 0; p < maxPositions; p++) {
        double angle = p * freq;
        cos[p * half + i] = (float) Math.cos(angle);
        sin[p * half + i] = (float) Math.sin(angle);
      }
    }
  }

  /** Cosines, {@code [position][headSize/2]} (a copy). */
  public float[] cosines() {
    return cos.clone();
  }

  /** Sines, {@code [position][headSize/2]} (a copy). */
  public float[] sines() {
    return sin.clone();
  }

  int maxPositions() {
    return cos.length / half;
  }

  /**
   * Rotates every head of {@code heads} heads stored at {@code x[off ..]} for position {@code pos}.
   */
  void rotate(float[] x, int off, int heads, int pos) {
    int base = pos * half;
    int headSize = 2 * half;
    for (int h = 0; h < heads; h++) {
      int o = off + h * headSize;
      if (style == RopeStyle.ADJACENT_PAIRS) {
        for (int i = 0; i < half; i++) {
          float c = cos[base + i];
          float s = sin[base + i];
          float a = x[o + 2 * i];
          float b = x[o + 2 * i + 1];
          x[o + 2 * i] = a * c - b * s;
          x[o + 2 * i + 1] = a * s + b * c;
        }
      } else {
        for (int i = 0; i < half; i++) {
          float c = cos[base + i];
          float s = sin[base + i];
          float a = x[o + i];
          float b = x[o + i + half];
          x[o + i] = a * c - b * s;
          x[o + i + half] = a * s + b * c;
        }
      }
    }
  }
}
