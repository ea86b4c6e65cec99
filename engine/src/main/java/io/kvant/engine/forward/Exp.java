package io.kvant.engine.forward;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * An exponential for the forward pass's vector loops (attention's softmax, SwiGLU), lane-wise and
 * scalar with the same bits.
 *
 * <p>Design note: the Vector API's {@code lanewise(EXP)} is fast where C2 calls its SVML stub, but
 * its interpreter and C1 fallback is {@code Math.exp} per lane, which can differ in the last bit,
 * so a result would depend on the JIT's state (the reason {@code DotKernel} avoids {@code
 * reduceLanes(ADD)}). This one is made of IEEE adds, multiplies and fused multiply-adds only, which
 * every execution mode computes alike, and {@link #exp(float)} does the same operations as {@link
 * #exp(FloatVector)} does per lane.
 *
 * <p>{@code x = k ln2 + r} with {@code k = rint(x log2 e)} (by the 1.5 * 2^23 rounding trick),
 * {@code r} reduced in two fused steps ({@code ln2} split into a head exact in few bits and a
 * tail), {@code e^r} by the Taylor series to degree 7 in Horner form (|r| <= ln2/2, so the
 * remainder is under 6e-9, a tenth of an F32 ulp), then scaled by {@code 2^k} built in the exponent
 * field. Within 2 ulps of {@code Math.exp} on {@code [-87.3, 88]} (tested); below {@code -87.3}
 * (results under the smallest normal float) it returns 0, where {@code Math.exp} returns a
 * subnormal; above 88 it returns {@code exp(88)} (about 1.7e38), where {@code Math.exp} overflows
 * to infinity past 88.7. NaN gives NaN.
 */
final class Exp {
  private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

  private static final float LOG2E = 1.44269504f;
  // ln 2 = LN2_HI + LN2_LO; LN2_HI has 9 significant bits, so k * LN2_HI is exact for |k| < 2^15.
  private static final float LN2_HI = 0.693359375f;
  private static final float LN2_LO = -2.12194440e-4f;
  private static final float ROUND = 12582912f; // 1.5 * 2^23: x + ROUND - ROUND rounds to integer
  private static final float LOWEST = -87.33654f; // ln(2^-126): smaller results flush to 0
  private static final float HIGHEST = 88f; // keeps 2^k finite; larger inputs are clamped
  private static final float C2 = 1f / 2;
  private static final float C3 = 1f / 6;
  private static final float C4 = 1f / 24;
  private static final float C5 = 1f / 120;
  private static final float C6 = 1f / 720;
  private static final float C7 = 1f / 5040;

  private Exp() {}

  /** The exponential of every lane, as the class note describes. */
  static FloatVector exp(FloatVector x) {
    FloatVector xc = x.max(LOWEST).min(HIGHEST);
    FloatVector k = xc.mul(LOG2E).add(ROUND).sub(ROUND);
    FloatVector r = k.fma(bcast(-LN2_HI), xc);
    r = k.fma(bcast(-LN2_LO), r);
    FloatVector p = r.fma(C7, C6);
    p = p.fma(r, bcast(C5));
    p = p.fma(r, bcast(C4));
    p = p.fma(r, bcast(C3));
    p = p.fma(r, bcast(C2));
    p = p.fma(r, bcast(1f));
    p = p.fma(r, bcast(1f));
    IntVector bits =
        ((IntVector) k.convert(VectorOperators.F2I, 0)).add(127).lanewise(VectorOperators.LSHL, 23);
    FloatVector y = p.mul(bits.reinterpretAsFloats());
    VectorMask<Float> under = x.compare(VectorOperators.LT, LOWEST);
    return y.blend(0f, under);
  }

  private static FloatVector bcast(float v) {
    return FloatVector.broadcast(F, v);
  }

  /** The scalar twin of {@link #exp(FloatVector)}: the same operations, so the same bits. */
  static float exp(float x) {
    float xc = Math.min(Math.max(x, LOWEST), HIGHEST);
    float k = xc * LOG2E + ROUND - ROUND;
    float r = Math.fma(k, -LN2_HI, xc);
    r = Math.fma(k, -LN2_LO, r);
    float p = Math.fma(r, C7, C6);
    p = Math.fma(p, r, C5);
    p = Math.fma(p, r, C4);
    p = Math.fma(p, r, C3);
    p = Math.fma(p, r, C2);
    p = Math.fma(p, r, 1f);
    p = Math.fma(p, r, 1f);
    float y = p * Float.intBitsToFloat(((int) k + 127) << 23);
    return x < LOWEST ? 0f : y;
  }
}
