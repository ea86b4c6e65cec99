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
    float[] t = table0(type);
    int sign = x < 0 || (x == 0 && 1 / x < 0) ? 0x80 : 0;
    float a = Math.abs(x);
    // Positive finite codes 0..maxCode are increasing in value.
    int maxCode = type == DType.F8_E4M3 ? 0x7E : 0x7B;
    int lo = 0;
    int hi = maxCode;
    if (a >= t[maxCode]) {
      return sign | maxCode;
    }
    while (hi - lo > 1) {
      int mid = (lo + hi) >>> 1;
      if (t[mid] <= a) {
        lo = mid;
      } else {
        hi = mid;
      }
    }
    float dLo = a - t[lo];
    float dHi = t[hi] - a;
    int code = dLo < dHi ? lo : dHi < dLo ? hi : ((lo & 1) == 0 ? lo : hi);
    return sign | code;
  }
}
