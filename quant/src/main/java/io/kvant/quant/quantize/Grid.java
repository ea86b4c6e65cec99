package io.kvant.quant.quantize;

import io.kvant.engine.tensor.DType;
import io.kvant.engine.tensor.Fp8Codes;

/**
 * The code grid of one quantized format: how a range becomes (scale, zero point), how a value
 * becomes a code, and the exact decoded value of a code, computed with the same float operation as
 * the tensor kernels (so errors measured here are the errors the model sees).
 */
abstract sealed class Grid {
  /** Sets {@code out[0] = scale}, {@code out[1] = zero point} for the range {@code [lo, hi]}. */
  abstract void params(float lo, float hi, float[] out);

  abstract int code(float x, float scale, int zero);

  abstract float value(int code, float scale, int zero);

  static Grid of(QuantSpec spec) {
    return switch (spec.format()) {
      case INT8 -> new Int8();
      case INT4 -> spec.symmetric() ? new Int4Sym() : new Int4Asym();
      case FP8_E4M3 -> new Fp8(DType.F8_E4M3);
      case FP8_E5M2 -> new Fp8(DType.F8_E5M2);
      default -> throw new IllegalArgumentException("no grid for " + spec.format());
    };
  }

  static float absMax(float lo, float hi) {
    return Math.max(Math.abs(lo), Math.abs(hi));
  }

  static int clamp(long v, int lo, int hi) {
    return (int) Math.max(lo, Math.min(hi, v));
  }

  static long round(float x) {
    return (long) Math.rint(x);
  }

  /** Signed int8 codes, symmetric: {@code value = scale * q}, scale = absmax / 127. */
  static final class Int8 extends Grid {
    @Override
    void params(float lo, float hi, float[] out) {
      out[0] = absMax(lo, hi) / 127f;
      out[1] = 0;
    }

    @Override
    int code(float x, float scale, int zero) {
      return scale == 0 ? 0 : clamp(round(x / scale), -128, 127);
    }

    @Override
    float value(int code, float scale, int zero) {
      return scale * (float) code;
    }
  }

  /** Unsigned 4-bit codes: {@code value = scale * (code - zero)}. */
  abstract static sealed class Int4 extends Grid {
    @Override
    int code(float x, float scale, int zero) {
      return scale == 0 ? zero : clamp(round(x / scale) + zero, 0, 15);
    }

    @Override
    float value(int code, float scale, int zero) {
      return scale * (float) (code - zero);
    }
  }

  /** Zero point 8, scale = absmax / 7 (codes -8..7, +absmax reachable). */
  static final class Int4Sym extends Int4 {
    @Override
    void params(float lo, float hi, float[] out) {
      out[0] = absMax(lo, hi) / 7f;
      out[1] = 8;
    }
  }

  /** Range widened to include 0, scale = (hi - lo) / 15, zero = round(-lo / scale). */
  static final class Int4Asym extends Int4 {
    @Override
    void params(float lo, float hi, float[] out) {
      float l = Math.min(lo, 0f);
      float h = Math.max(hi, 0f);
      float s = (h - l) / 15f;
      out[0] = s;
      out[1] = s == 0 ? 0 : clamp(round(-l / s), 0, 15);
    }
  }

  /** FP8 codes, scale = absmax / largest finite. */
  static final class Fp8 extends Grid {
    private final DType type;

    Fp8(DType type) {
      this.type = type;
    }

    @Override
    void params(float lo, float hi, float[] out) {
      out[0] = absMax(lo, hi) / Fp8Codes.maxFinite(type);
      out[1] = 0;
    }

    @Override
    int code(float x, float scale, int zero) {
      return scale == 0 ? 0 : Fp8Codes.encode(type, x / scale);
    }

    @Override
    float value(int code, float scale, int zero) {
      return scale * Fp8Codes.decode(type, code);
    }
  }
}
