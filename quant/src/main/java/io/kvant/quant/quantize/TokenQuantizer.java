package io.kvant.quant.quantize;

import io.kvant.engine.tensor.DType;
import io.kvant.engine.tensor.Fp8Codes;
import io.kvant.quant.encoding.WeightFormat;

/**
 * Per-token activation quantization as the CUDA backend's W8A8 products do it (engine-cuda's {@code
 * w8a8_quantize} kernel), applied on the CPU as fake quantization: each value is replaced by the
 * value its code stands for, so a weight-only product of the result equals the W8A8 product up to
 * float summation order.
 *
 * <p>Per row: {@code amax = max |x_c|}, {@code M = 127} (INT8) or {@code 448} (FP8 E4M3), {@code
 * inv = M / amax} and {@code scale = amax / M} (both 0 for an all-zero row), {@code v = x_c * inv}
 * in F32; INT8 {@code code = clamp(floor(v + 0.5), -127, 127)} (round half up, as the kernel and
 * Java's {@code Math.round}), E4M3 {@code code = e4m3(v)} (nearest, ties to even, saturating); the
 * value is {@code decode(code) * scale} in F32.
 */
public final class TokenQuantizer {
  private TokenQuantizer() {}

  /** Whether activations are quantized for weights of {@code f} (the formats W8A8 reads). */
  public static boolean quantizes(WeightFormat f) {
    return f == WeightFormat.INT8 || f == WeightFormat.FP8_E4M3;
  }

  /**
   * Replaces {@code rows} rows of {@code width} values of {@code x} from index 0 by their per-token
   * quantized values in the activation code of weights of {@code format}.
   *
   * @throws IllegalArgumentException if {@code format} is not INT8 or FP8 E4M3
   */
  public static void fakeQuantize(float[] x, int rows, int width, WeightFormat format) {
    if (!quantizes(format)) {
      throw new IllegalArgumentException(
          "per-token activation codes are int8 or fp8_e4m3, not " + format.jsonName());
    }
    boolean int8 = format == WeightFormat.INT8;
    float maxCode = int8 ? 127f : 448f;
    for (int r = 0; r < rows; r++) {
      int o = r * width;
      float amax = 0;
      for (int c = 0; c < width; c++) {
        amax = Math.max(amax, Math.abs(x[o + c]));
      }
      float inv = amax == 0 ? 0 : maxCode / amax;
      float scale = amax == 0 ? 0 : amax / maxCode;
      for (int c = 0; c < width; c++) {
        float v = x[o + c] * inv;
        float code =
            int8
                ? Math.max(-127, Math.min(127, (int) Math.floor(v + 0.5f)))
                : Fp8Codes.decode(DType.F8_E4M3, Fp8Codes.encode(DType.F8_E4M3, v));
        x[o + c] = code * scale;
      }
    }
  }
}
