package io.kvant.engine.forward;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The softmax of one head's attention scores, in place and vectorised.
 *
 * <p>Design note: at long contexts the scalar softmax was most of attention: one {@code Math.exp}
 * (5.4 ns) per score, per head and layer; at 2,048 positions the 135M shape takes 550,000 of them
 * per token. The exponential is {@link Exp}'s, whose lanes and scalar twin give the same bits in
 * every JIT mode, so a score's value does not depend on its lane, the tail, or the JIT.
 *
 * <p>The sum of the exponentials is taken per lane over full vectors, then the lanes in index
 * order, then the tail: {@link #softmaxReference} models it exactly, and the tests hold the kernel
 * to it bit for bit.
 */
final class Softmax {
  private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
  private static final int L = F.length();

  private Softmax() {}

  /**
   * {@code s[off + t] = exp(scale * s[off + t] - m) / sum} for {@code t < len}, where {@code m} is
   * the largest {@code scale * s[off + t]} and {@code sum} the sum of the exponentials (in the
   * order the class note gives). {@code len >= 1}.
   */
  static void inPlace(float[] s, int off, int len, float scale) {
    inPlace(s, off, len, scale, new float[L]);
  }

  /**
   * {@link #inPlace(float[], int, int, float)} with {@code lanes} (at least {@link #lanes()}
   * floats, overwritten) as scratch for the lane sums, so a call allocates nothing (attention calls
   * it once per row and head).
   */
  static void inPlace(float[] s, int off, int len, float scale, float[] lanes) {
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
        FloatVector e = Exp.exp(FloatVector.fromArray(F, s, t).sub(max));
        e.intoArray(s, t);
        acc = acc.add(e);
      }
      // the lanes in index order, through the caller's array: lane(i) with a variable i was
      // slower, and a vector passed to a helper C2 does not inline is boxed
      acc.intoArray(lanes, 0);
      for (int i = 0; i < L; i++) {
        sum += lanes[i];
      }
    }
    for (t = upper; t < end; t++) {
      float e = Exp.exp(s[t] - max);
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

  /** Floats of the lane-sum scratch {@link #inPlace(float[], int, int, float, float[])} takes. */
  static int lanes() {
    return L;
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
      s[t] = Exp.exp(s[t] - max);
      lanes[t % L] += s[t];
    }
    float sum = 0f;
    if (upper > 0) {
      for (int i = 0; i < L; i++) {
        sum += lanes[i];
      }
    }
    for (int t = upper; t < len; t++) {
      s[t] = Exp.exp(s[t] - max);
      sum += s[t];
    }
    float inv = 1f / sum;
    for (int t = 0; t < len; t++) {
      s[t] *= inv;
    }
  }
}
