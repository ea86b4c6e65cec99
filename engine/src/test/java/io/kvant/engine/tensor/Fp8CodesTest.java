package io.kvant.engine.tensor;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** {@link Fp8Codes#encode}'s bit arithmetic against a search of the decoding table. */
class Fp8CodesTest {

  /**
   * The scalar reference: a binary search for the nearest of the increasing positive finite codes,
   * ties to the even code, saturating at the largest finite one (the encoder as first written).
   */
  private static int bySearch(DType type, float x) {
    int sign = x < 0 || (x == 0 && 1 / x < 0) ? 0x80 : 0;
    float a = Math.abs(x);
    int maxCode = maxCode(type);
    if (a >= Fp8Codes.decode(type, maxCode)) {
      return sign | maxCode;
    }
    int lo = 0;
    int hi = maxCode;
    while (hi - lo > 1) {
      int mid = (lo + hi) >>> 1;
      if (Fp8Codes.decode(type, mid) <= a) {
        lo = mid;
      } else {
        hi = mid;
      }
    }
    float dLo = a - Fp8Codes.decode(type, lo);
    float dHi = Fp8Codes.decode(type, hi) - a;
    int code = dLo < dHi ? lo : dHi < dLo ? hi : ((lo & 1) == 0 ? lo : hi);
    return sign | code;
  }

  /** The largest finite positive code: 448 in E4M3, 57344 in E5M2. */
  private static int maxCode(DType type) {
    return type == DType.F8_E4M3 ? 0x7E : 0x7B;
  }

  private static void check(DType type, float x) {
    assertThat(Fp8Codes.encode(type, x)).as("%s %s", type, x).isEqualTo(bySearch(type, x));
    assertThat(Fp8Codes.encode(type, -x)).as("%s -%s", type, x).isEqualTo(bySearch(type, -x));
  }

  @ParameterizedTest
  @EnumSource(
      value = DType.class,
      names = {"F8_E4M3", "F8_E5M2"})
  void everyCodeAndEveryMidpointAndItsNeighboursEncodeAsTheSearchDoes(DType type) {
    int maxCode = maxCode(type);
    for (int c = 0; c <= maxCode; c++) {
      float v = Fp8Codes.decode(type, c);
      assertThat(Fp8Codes.encode(type, v)).as("%s code %02x", type, c).isEqualTo(c);
      check(type, v);
      check(type, Math.nextUp(v));
      check(type, Math.nextDown(v));
      if (c < maxCode) {
        // the tie between two codes (exact in float: one more bit than the codes have)
        float mid = (v + Fp8Codes.decode(type, c + 1)) / 2;
        for (float x = Math.nextDown(Math.nextDown(mid)), k = 0; k < 5; k++, x = Math.nextUp(x)) {
          check(type, x);
        }
      }
    }
    float max = Fp8Codes.maxFinite(type);
    for (float x : new float[] {0f, Float.MIN_VALUE, 1e-30f, max, Math.nextUp(max), 1e30f}) {
      check(type, x);
    }
    check(type, Float.POSITIVE_INFINITY);
  }

  @ParameterizedTest
  @EnumSource(
      value = DType.class,
      names = {"F8_E4M3", "F8_E5M2"})
  void randomBitPatternsAndRandomInRangeValuesEncodeAsTheSearchDoes(DType type) {
    SplittableRandom rnd = new SplittableRandom(17);
    float max = Fp8Codes.maxFinite(type);
    for (int i = 0; i < 300_000; i++) {
      float x = Float.intBitsToFloat(rnd.nextInt());
      if (!Float.isNaN(x)) {
        check(type, x);
      }
      check(type, (float) rnd.nextDouble(0, max * 1.1));
      // magnitudes across the whole range, subnormals included
      check(type, (float) Math.scalb(rnd.nextDouble(1, 2), rnd.nextInt(-24, 17)));
    }
  }

  @ParameterizedTest
  @EnumSource(
      value = DType.class,
      names = {"F8_E4M3", "F8_E5M2"})
  void nanIsRejectedOrSaturatesAndOtherTypesAreRefused(DType type) {
    int maxCode = maxCode(type);
    assertThatThrownBy(() -> Fp8Codes.encode(type, Float.NaN))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("NaN");
    assertThat(Fp8Codes.encodeSaturating(type, Float.NaN)).isEqualTo(maxCode);
    assertThat(Fp8Codes.encodeSaturating(type, Float.intBitsToFloat(0xFFC00000)))
        .isEqualTo(0x80 | maxCode);
    assertThatThrownBy(() -> Fp8Codes.encode(DType.F16, 1f))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("not an FP8 type");
  }
}
