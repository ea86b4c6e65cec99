package io.kvant.quant.quantize;

import java.util.Arrays;

/**
 * Chooses the quantization parameters of one unit (a row, a group of a row, or a whole tensor): a
 * contiguous run {@code w[off .. off+len)} whose first element is input column {@code col0}.
 *
 * <p>Design note: min-max takes the full range; percentile clips at a percentile of the values (of
 * |w| when symmetric); MSE tries clipping ratios {@code 1, 0.98, ..., 0.5} of the min-max range and
 * keeps the one with the smallest squared rounding error {@code sum_c imp[c] * (w - deq(q(w)))^2},
 * where {@code imp[c]} is the mean squared activation of input column {@code c} when calibration
 * data is given (a diagonal approximation of the output error, as in GPTQ's Hessian {@code X^T X})
 * and 1 otherwise. References: AIMET's TF-enhanced / MSE range setting, llm-awq's clip search.
 */
final class RangeSearch {
  static final int MSE_STEPS = 26;

  private RangeSearch() {}

  /** Writes {@code scale, zero} of the unit into {@code out}. */
  static void choose(
      Grid grid,
      QuantSpec spec,
      float[] w,
      int off,
      int len,
      int col0,
      int cols,
      float[] importance,
      float[] out) {
    float lo = 0;
    float hi = 0;
    for (int i = 0; i < len; i++) {
      lo = Math.min(lo, w[off + i]);
      hi = Math.max(hi, w[off + i]);
    }
    switch (spec.method()) {
      case MINMAX, SMOOTHQUANT -> grid.params(lo, hi, out);
      case PERCENTILE -> {
        float[] v = Arrays.copyOfRange(w, off, off + len);
        double p = spec.percentile() / 100.0;
        if (spec.symmetric()) {
          for (int i = 0; i < v.length; i++) {
            v[i] = Math.abs(v[i]);
          }
          Arrays.sort(v);
          float c = v[(int) Math.ceil(p * (v.length - 1))];
          grid.params(-c, c, out);
        } else {
          Arrays.sort(v);
          grid.params(
              Math.min(0, v[(int) Math.floor((1 - p) * (v.length - 1))]),
              Math.max(0, v[(int) Math.ceil(p * (v.length - 1))]),
              out);
        }
      }
      case MSE, AWQ, GPTQ -> {
        float[] trial = new float[2];
        double best = Double.POSITIVE_INFINITY;
        for (int step = 0; step < MSE_STEPS; step++) {
          float ratio = 1f - 0.02f * step;
          grid.params(lo * ratio, hi * ratio, trial);
          double err = error(grid, w, off, len, col0, cols, importance, trial[0], (int) trial[1]);
          if (err < best) {
            best = err;
            out[0] = trial[0];
            out[1] = trial[1];
          }
        }
      }
    }
  }

  static double error(
      Grid grid,
      float[] w,
      int off,
      int len,
      int col0,
      int cols,
      float[] importance,
      float scale,
      int zero) {
    double err = 0;
    for (int i = 0; i < len; i++) {
      float x = w[off + i];
      float d = x - grid.value(grid.code(x, scale, zero), scale, zero);
      double imp = importance == null ? 1 : importance[(col0 + i) % cols];
      err += imp * d * d;
    }
    return err;
  }
}
