package io.kvant.quant.quantize;

import io.kvant.engine.forward.ActivationObserver;
import java.util.HashMap;
import java.util.Map;

/**
 * Collects, per (layer, site), the per-column mean |x|, mean x^2 and max |x| of the activations a
 * forward pass feeds into the weight matrices, and keeps up to {@code maxSamples} rows for
 * output-error searches. Not thread-safe (the forward thread calls it).
 */
public final class ActivationStats implements ActivationObserver {
  /** Statistics of one site. */
  public static final class SiteStats {
    final int width;
    final double[] sumAbs;
    final double[] sumSq;
    final float[] maxAbs;
    long count;
    final float[] samples;
    int sampleRows;

    SiteStats(int width, int maxSamples) {
      this.width = width;
      this.sumAbs = new double[width];
      this.sumSq = new double[width];
      this.maxAbs = new float[width];
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

    /**
     * Max |x| per column over every observed row (SmoothQuant's activation range: per-token
     * quantization is set by a row's largest element, so the extremes matter, not the mean).
     */
    public float[] maxAbs() {
      return maxAbs.clone();
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
        float a = Math.abs(v);
        s.sumAbs[c] += a;
        s.maxAbs[c] = Math.max(s.maxAbs[c], a);
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
