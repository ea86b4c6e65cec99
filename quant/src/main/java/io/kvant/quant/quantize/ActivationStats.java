package io.kvant.quant.quantize;

import io.kvant.engine.forward.ActivationObserver;
import java.util.HashMap;
import java.util.Map;

/**
 * Collects, per (layer, site), the per-column mean |x| and mean x^2 of the activations a forward
 * pass feeds into the weight matrices, and keeps up to {@code maxSamples} rows for output-error
 * searches. Not thread-safe (the forward thread calls it).
 */
public final class ActivationStats implements ActivationObserver {
  /** Statistics of one site. */
  public static final class SiteStats {
    final int width;
    final double[] sumAbs;
    final double[] sumSq;
    long count;
    final float[] samples;
    int sampleRows;

    SiteStats(int width, int maxSamples) {
      this.width = width;
      this.sumAbs = new double[width];
      this.sumSq = new double[width];
      this.samples = new float[maxSamples * width];
    }

    /** Mean |x| per column. */
    public float[] meanAbs() {
      float[] m = new float[width];
      for (int c = 0; c < width; c++) {
        m[c] = (float) (sumAbs[c] / Math.max(1, count));
      }
      return m;
    }

    /** Mean x^2 per column. */
    public float[] meanSquare() {
      float[] m = new float[width];
      for (int c = 0; c < width; c++) {
        m[c] = (float) (sumSq[c] / Math.max(1, count));
      }
      return m;
    }

    /** The kept rows, {@code [sampleRows()][width]}. */
    public float[] samples() {
      return java.util.Arrays.copyOf(samples, sampleRows * width);
    }

    public int sampleRows() {
      return sampleRows;
    }

    public int width() {
      return width;
    }
  }

  private final int maxSamples;
  private final Map<String, SiteStats> sites = new HashMap<>();

  public ActivationStats(int maxSamples) {
    this.maxSamples = maxSamples;
  }

  @Override
  public void observe(int layer, Site site, float[] x, int rows, int width) {
    SiteStats s = sites.computeIfAbsent(layer + "/" + site, k -> new SiteStats(width, maxSamples));
    for (int r = 0; r < rows; r++) {
      int o = r * width;
      for (int c = 0; c < width; c++) {
        float v = x[o + c];
        s.sumAbs[c] += Math.abs(v);
        s.sumSq[c] += (double) v * v;
      }
      if (s.sampleRows < maxSamples) {
        System.arraycopy(x, o, s.samples, s.sampleRows * width, width);
        s.sampleRows++;
      }
    }
    s.count += rows;
  }

  /** Statistics of a site, or {@code null} when it was never observed. */
  public SiteStats get(int layer, Site site) {
    return sites.get(layer + "/" + site);
  }
}
