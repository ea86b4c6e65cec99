package io.kvant.quant.quantize;

import java.util.Locale;

/** How the quantization range (scale, zero point) of a channel or group is chosen. */
public enum Method {
  /** The full range of the values (absolute maximum when symmetric). */
  MINMAX,
  /** The range clipped at a percentile of the values (see {@link QuantSpec#percentile()}). */
  PERCENTILE,
  /**
   * A grid search over clipping ratios of the min-max range minimising the squared rounding error,
   * weighted per input column by the mean squared activation when calibration data is given.
   */
  MSE,
  /**
   * Activation-aware weight quantization (AWQ): per input channel scales {@code s = mean|x|^a}
   * (with {@code a} searched on calibration activations to minimise the layers' output error) are
   * multiplied into the weight columns and divided out of the preceding norm (or the rows of the
   * preceding linear layer); the scaled weights are then quantized with {@link #MSE} clipping.
   */
  AWQ,
  /**
   * GPTQ ({@link Gptq}): ranges by {@link #MSE} clipping weighted by {@code diag(X^T X)}, then
   * columns rounded one at a time with each rounding error compensated on the columns not yet
   * rounded, using the inverse Hessian of the layer's output error on calibration activations.
   * Layers are quantized in order, each calibrated on the outputs of the already quantized ones.
   * Where a tensor has no input activations (embeddings), {@link #MSE} is used instead.
   */
  GPTQ,
  /**
   * SmoothQuant ({@link SmoothQuant}), for weights that a W8A8 product reads (INT8 per-channel, FP8
   * E4M3): per input channel {@code s = max|x|^a / max|w|^(1-a)}, with {@code a} searched (or no
   * smoothing) to minimise the output error of per-token quantized activations times the quantized
   * weights on calibration activations, folded like {@link #AWQ}; the smoothed weights are then
   * quantized with {@link #MINMAX} ranges. lm_head and embeddings take {@link #MINMAX} unsmoothed.
   */
  SMOOTHQUANT;

  /** The lower-case name used in recipe files and the QBOM. */
  public String jsonName() {
    return name().toLowerCase(Locale.ROOT);
  }

  /** Parses {@code minmax|absmax|percentile|mse|awq|gptq|smoothquant}. */
  public static Method parse(String s) {
    String n = s.toLowerCase(Locale.ROOT).strip();
    if (n.equals("absmax") || n.equals("min-max") || n.equals("min_max")) {
      return MINMAX;
    }
    if (n.equals("smooth-quant") || n.equals("smooth_quant")) {
      return SMOOTHQUANT;
    }
    for (Method m : values()) {
      if (m.jsonName().equals(n)) {
        return m;
      }
    }
    throw new IllegalArgumentException(
        "unknown calibration method '" + s + "' (minmax, percentile, mse, awq, gptq, smoothquant)");
  }
}
