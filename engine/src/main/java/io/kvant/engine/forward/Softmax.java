package io.kvant.engine.forward;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The softmax of one head's attention scores, in place and vectorised, with an exponential of its
 * own.
 *
 * <p>Design note: at long contexts the scalar softmax was most of attention: one {@code Math.exp}
 * (tens of cycles) per score, per head and layer; at 2,048 positions the 135M shape takes 550,000
 * of them per token. The Vector API's {@code lanewise(EXP)} is fast where C2 calls its SVML stub,
 * but its interpreter and C1 fallback is {@code Math.exp} per lane, which can differ in the last
 * bit, so a score would depend on the JIT's state (the reason {@code DotKernel} avoids {@code
 * reduceLanes(ADD)}). {@link #exp} is made of IEEE adds, multiplies and fused multiply-adds only,
 * which every execution mode computes alike, and its scalar twin {@link #exp(float)} does the same
 * operations, so a score's value does not depend on its lane, the tail, or the JIT.
 *
 * <p>The exponential: {@code x = k ln2 + r} with {@code k = rint(x log2 e)} (by the 1.5 * 2^23
 * rounding trick), {@code r} reduced in two fused steps ({@code ln2} split into a head exact in few
 * bits and a tail), {@code e^r} by the Taylor series to degree 7 in Horner form (|r| <= ln2/2, so
 * the remainder is under 6e-9, a tenth of an F32 ulp), then scaled by {@code 2^k} built in the
 * exponent field. Within 2 ulps of {@code Math.exp} on {@code [-87.3, 88]} (tested); below {@code
 * -87.3} (results under the smallest normal float) it returns 0, where {@code Math.exp} returns a
 * subnormal, nothing a softmax can see; above 88 it returns {@code exp(88)} (a softmax only feeds
 * it scores minus their maximum, at most 0). NaN gives NaN.
 *
 * <p>The sum of the exponentials is taken per lane over full vectors, then the lanes in index
 * order, then the tail: {@link #softmaxReference} models it exactly, and the tests hold the kernel
 * to it bit for bit.
 */
final class Softmax {
  private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
  private static final VectorSpecies<Integer> I = F.withLanes(int.class);
  private static final int L = F.length();

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

  private Softmax() {}

  /**
   * {@code s[off + t] = exp(scale * s[off + t] - m) / sum} for {@code t < len}, where {@code m} is
   * the largest {@code scale * s[off + t]} and {@code sum} the sum of the exponentials (in the
   * order the class note gives). {@code len >= 1}.
   */
  static void inPlace(float[] s, int off, int len, float scale) {
    int upper = off + F.loopBound(len);
    int end = off + len;
    float max = Float.NEGATIVE_INFINITY;
    int t = off;
    if (upper > off) {
      FloatVector m = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
      for (; t < upper; t += L) {
        FloatVector v = FloatVector.fromArray(F, s, t).mul(scale);
        v.intoArray(s, t);
        m = m.max(v);
      }
      max = m.reduceLanes(VectorOperators.MAX); // exact whatever the order
    }
    for (; t < end; t++) {
      s[t] *= scale;
      max = Math.max(max, s[t]);
    }
    float sum = 0f;
    if (upper > off) {
      FloatVector acc = FloatVector.zero(F);
      for (t = off; t < upper; t += L) {
        FloatVector e = exp(FloatVector.fromArray(F, s, t).sub(max));
        e.intoArray(s, t);
        acc = acc.add(e);
      }
      sum = sumInOrder(acc);
    }
    for (t = upper; t < end; t++) {
      float e = exp(s[t] - max);
      s[t] = e;
      sum += e;
    }
    float inv = 1f / sum;
    for (t = off; t < upper; t += L) {
      FloatVector.fromArray(F, s, t).mul(inv).intoArray(s, t);
    }
    for (t = upper; t < end; t++) {
      s[t] *= inv;
    }
  }

  private static float sumInOrder(FloatVector acc) {
    float[] lanes =
        new float[L]; // one small allocation per call: lane(i) with a variable i is slow
    acc.intoArray(lanes, 0);
    float sum = 0f;
    for (float v : lanes) {
      sum += v;
    }
    return sum;
  }

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

  /** Scalar model of {@link #inPlace} for tests: the same values, the same summation order. */
  static void softmaxReference(float[] s, int len, float scale) {
    int upper = F.loopBound(len);
    float max = Float.NEGATIVE_INFINITY;
    for (int t = 0; t < len; t++) {
      s[t] *= scale;
      max = Math.max(max, s[t]);
    }
    float[] lanes = new float[L];
    for (int t = 0; t < upper; t++) {
      s[t] = exp(s[t] - max);
      lanes[t % L] += s[t];
    }
    float sum = 0f;
    if (upper > 0) {
      for (int i = 0; i < L; i++) {
        sum += lanes[i];
      }
    }
    for (int t = upper; t < len; t++) {
      s[t] = exp(s[t] - max);
      sum += s[t];
    }
    float inv = 1f / sum;
    for (int t = 0; t < len; t++) {
      s[t] *= inv;
    }
  }
}
