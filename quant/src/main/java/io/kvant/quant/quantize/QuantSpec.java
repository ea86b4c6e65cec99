package io.kvant.quant.quantize;

import io.kvant.quant.encoding.WeightFormat;

/**
 * How one tensor is quantized.
 *
 * @param format storage type
 * @param groupSize input columns per group for {@link WeightFormat#INT4} (even, e.g. 32, 64, 128; a
 *     row's last group is partial when the width is not a multiple); 0 otherwise
 * @param symmetric symmetric range (zero point fixed) or asymmetric with a zero point per group;
 *     INT8 and FP8 are always symmetric
 * @param method range selection
 * @param percentile for {@link Method#PERCENTILE}: the percentile of |w| kept, in (50, 100]
 * @param perTensor FP8 only: one scale for the whole tensor instead of one per output channel
 */
public record QuantSpec(
    WeightFormat format,
    int groupSize,
    boolean symmetric,
    Method method,
    double percentile,
    boolean perTensor) {
  /** Keep in full precision. */
  public static final QuantSpec FULL =
      new QuantSpec(WeightFormat.FULL, 0, true, Method.MINMAX, 100, false);

  public QuantSpec {
    java.util.Objects.requireNonNull(format, "format");
    java.util.Objects.requireNonNull(method, "method");
    if (format == WeightFormat.INT4) {
      if (groupSize < 2 || groupSize % 2 != 0) {
        throw new IllegalArgumentException("int4 needs an even group size >= 2, got " + groupSize);
      }
    } else {
      groupSize = 0;
    }
    if (format != WeightFormat.INT4) {
      symmetric = true;
    }
    if (format == WeightFormat.FULL || format == WeightFormat.Q4_0 || format == WeightFormat.Q8_0) {
      method =
          Method.MINMAX; // these take no range choice: normalise so equal recipes compare equal
      percentile = 100;
    }
    if (!(percentile > 50 && percentile <= 100)) {
      throw new IllegalArgumentException("percentile must be in (50, 100], got " + percentile);
    }
    if (perTensor && format != WeightFormat.FP8_E4M3 && format != WeightFormat.FP8_E5M2) {
      throw new IllegalArgumentException("per-tensor scales are only offered for fp8");
    }
    if (method == Method.SMOOTHQUANT && !SmoothQuant.smooths(format)) {
      // Smoothing moves quantization difficulty from activations to weights: it only pays where
      // the activations are quantized too, i.e. the formats the GPU's W8A8 products read.
      throw new IllegalArgumentException(
          "smoothquant needs int8 or fp8_e4m3 weights (the W8A8 formats), not "
              + format.jsonName());
    }
  }

  public static QuantSpec int8(Method m) {
    return new QuantSpec(WeightFormat.INT8, 0, true, m, 99.99, false);
  }

  public static QuantSpec int4(int group, boolean symmetric, Method m) {
    return new QuantSpec(WeightFormat.INT4, group, symmetric, m, 99.9, false);
  }

  public static QuantSpec fp8(WeightFormat f, boolean perTensor, Method m) {
    return new QuantSpec(f, 0, true, m, 99.99, perTensor);
  }

  public static QuantSpec of(WeightFormat f) {
    return new QuantSpec(f, 0, true, Method.MINMAX, 100, false);
  }

  /** The same spec with another method (FULL, Q4_0 and Q8_0 ignore it). */
  public QuantSpec withMethod(Method m) {
    return new QuantSpec(format, groupSize, symmetric, m, percentile, perTensor);
  }

  /** A short label, e.g. {@code int4-g128-asym-mse}. */
  public String label() {
    return switch (format) {
      case FULL, Q4_0, Q8_0 -> format.jsonName();
      case INT4 -> "int4-g" + groupSize + (symmetric ? "-sym-" : "-asym-") + method.jsonName();
      case INT8 -> "int8-pc-" + method.jsonName();
      case FP8_E4M3, FP8_E5M2 ->
          format.jsonName() + (perTensor ? "-pt-" : "-pc-") + method.jsonName();
    };
  }
}
