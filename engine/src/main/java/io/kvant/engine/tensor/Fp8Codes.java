package io.kvant.engine.tensor;

/**
 * OCP 8-bit float formats: decoding tables built from the definitions, and round-to-nearest-even
 * encoding with saturation to the largest finite value.
 */
public final class Fp8Codes {
  private static final float[] E4M3 = build(DType.F8_E4M3);
  private static final float[] E5M2 = build(DType.F8_E5M2);

  private Fp8Codes() {}

  /** Largest finite magnitude: 448 for E4M3, 57344 for E5M2. */
  public static float maxFinite(DType type) {
    return type == DType.F8_E4M3 ? 448f : 57344f;
  }

  /** The value of {@code code} (0..255), NaN or infinite for the special codes. */
  public static float decode(DType type, int code) {
    return table0(type)[code & 0xFF];
  }

  /** A shared decoding table; callers must not write to it. */
  static float[] table(DType type) {
    return table0(type);
  }

  private static float[] table0(DType type) {
    return switch (type) {
      case F8_E4M3 -> E4M3;
      case F8_E5M2 -> E5M2;
      default -> throw new IllegalArgumentException("not an FP8 type: " + type);
    };
  }

  private static float[] build(DType type) {
    boolean e4 = type == DType.F8_E4M3;
    int mBits = e4 ? 3 : 2;
    int bias = e4 ? 7 : 15;
    int eMax = e4 ? 15 : 31;
    float[] t = new float[256];
    for (int code = 0; code < 256; code++) {
      int sign = code >>> 7;
      int e = (code >>> mBits) & (eMax);
      int m = code & ((1 << mBits) - 1);
      double v;
      if (e4 && e == 15 && m == 7) {
        v = Double.NaN;
      } else if (!e4 && e == 31) {
        v = m == 0 ? Double.POSITIVE_INFINITY : Double.NaN;
      } else if (e == 0) {
        v = Math.scalb((double) m / (1 << mBits), 1 - bias);
      } else {
        v = Math.scalb(1 + (double) m / (1 << mBits), e - bias);
      }
      t[code] = (float) (sign == 1 ? -v : v);
    }
    return t;
  }

  /**
   * The code of the finite value nearest to {@code x} (ties to the even code), saturating at {@link
   * #maxFinite}; NaN is rejected.
   */
  public static int encode(DType type, float x) {
    if (Float.isNaN(x)) {
      throw new IllegalArgumentException("cannot encode NaN as " + type);
    }
    return encodeSaturating(type, x);
  }

  /**
   * As {@link #encode}, but NaN takes the largest finite magnitude (with NaN's sign bit) instead of
   * an exception: for hot loops whose inputs are finite by construction.
   *
   * <p>Computed on the float's bits rather than searched in the table (a binary search of seven
   * unpredictable branches was three quarters of quantizing a model to FP8 at load): below the
   * smallest normal the code is the value in subnormal steps rounded half-even ({@link Math#rint});
   * above it the F32 mantissa is rounded to the format's bits, nearest even, on the bits (a carry
   * moves into the exponent, as it should), and the exponent re-biased.
   */
  public static int encodeSaturating(DType type, float x) {
    int sign = Float.floatToRawIntBits(x) < 0 ? 0x80 : 0;
    float a = Math.abs(x);
    return sign
        | switch (type) {
          // 3 mantissa bits (23 - 3 dropped), bias 7: 0x7E = 448, subnormal steps of 2^-9
          case F8_E4M3 -> magnitude(a, 448f, 0x7E, 0x1p-6f, 0x1p9f, 20, 127 - 7);
          // 2 mantissa bits (23 - 2 dropped), bias 15: 0x7B = 57344, subnormal steps of 2^-16
          case F8_E5M2 -> magnitude(a, 57344f, 0x7B, 0x1p-14f, 0x1p16f, 21, 127 - 15);
          default -> throw new IllegalArgumentException("not an FP8 type: " + type);
        };
  }

  /**
   * The code of {@code a >= 0} in a format whose largest finite value {@code max} has code {@code
   * maxCode}, whose smallest normal is {@code minNormal} with subnormal steps of {@code 1 / steps},
   * keeping {@code 23 - dropped} mantissa bits with exponent bias {@code 127 - rebias}.
   */
  private static int magnitude(
      float a, float max, int maxCode, float minNormal, float steps, int dropped, int rebias) {
    if (!(a < max)) {
      return maxCode;
    }
    if (a < minNormal) {
      return (int) Math.rint(a * steps); // the smallest normal's code is the subnormals' count
    }
    int bits = Float.floatToRawIntBits(a);
    bits += (1 << (dropped - 1)) - 1 + ((bits >>> dropped) & 1); // half to even
    return (bits >>> dropped) - (rebias << (23 - dropped));
  }
}
