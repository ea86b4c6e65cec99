package io.kvant.engine.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * Dot products of a few decoded weight rows with one input vector, using the preferred float vector
 * species.
 *
 * <p>Design note: rows are processed four at a time so that each {@code x} load feeds four FMAs and
 * four independent accumulator chains hide FMA latency. The per-row operation order is the same in
 * the four-row and the one-row paths (lane-wise FMA over full vectors in increasing column order, a
 * fixed butterfly lane sum, then a scalar {@code sum += w*x} tail), which is what makes {@link
 * Tensor#matmul} results independent of how rows are tiled or split across threads. {@code
 * reduceLanes(ADD)} is not used: its float summation order is unspecified and does differ between
 * the interpreter/C1 fallback and C2 intrinsics, which would make results depend on JIT state.
 */
final class DotKernel {
  static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

  // Butterfly partners for lane sums: lane i is added to lane i ^ L/2, then i ^ L/4, ... i ^ 1.
  private static final VectorShuffle<Float> XOR_8 = xorShuffle(8);
  private static final VectorShuffle<Float> XOR_4 = xorShuffle(4);
  private static final VectorShuffle<Float> XOR_2 = xorShuffle(2);
  private static final VectorShuffle<Float> XOR_1 = xorShuffle(1);

  private DotKernel() {}

  private static VectorShuffle<Float> xorShuffle(int distance) {
    return VectorShuffle.fromOp(F, i -> (i ^ distance) % F.length());
  }

  /**
   * Sum of all lanes in a fixed order (pairwise butterfly), the same in every execution mode. For
   * species of more than 16 lanes the extra lanes are first folded with a plain loop.
   */
  static float sumLanes(FloatVector v) {
    int len = F.length();
    if (len > 16) {
      float s = 0f;
      for (int i = 0; i < len; i++) {
        s += v.lane(i);
      }
      return s;
    }
    if (len >= 16) {
      v = v.add(v.rearrange(XOR_8));
    }
    if (len >= 8) {
      v = v.add(v.rearrange(XOR_4));
    }
    if (len >= 4) {
      v = v.add(v.rearrange(XOR_2));
    }
    if (len >= 2) {
      v = v.add(v.rearrange(XOR_1));
    }
    return v.lane(0);
  }

  /**
   * {@code out[outOff + i] = dot(w[i*cols .. (i+1)*cols), x[xOff .. xOff+cols))} for {@code i} in
   * {@code [0, n)}.
   */
  static void dotRows(float[] w, int n, int cols, float[] x, int xOff, float[] out, int outOff) {
    int i = 0;
    for (; i + 4 <= n; i += 4) {
      dot4(w, i * cols, cols, x, xOff, out, outOff + i);
    }
    for (; i < n; i++) {
      out[outOff + i] = dot1(w, i * cols, cols, x, xOff);
    }
  }

  private static float dot1(float[] w, int w0, int cols, float[] x, int x0) {
    int upper = F.loopBound(cols);
    FloatVector a0 = FloatVector.zero(F);
    for (int c = 0; c < upper; c += F.length()) {
      FloatVector xv = FloatVector.fromArray(F, x, x0 + c);
      a0 = FloatVector.fromArray(F, w, w0 + c).fma(xv, a0);
    }
    float s0 = sumLanes(a0);
    for (int c = upper; c < cols; c++) {
      s0 += w[w0 + c] * x[x0 + c];
    }
    return s0;
  }

  private static void dot4(float[] w, int w0, int cols, float[] x, int x0, float[] out, int o) {
    int w1 = w0 + cols;
    int w2 = w1 + cols;
    int w3 = w2 + cols;
    int upper = F.loopBound(cols);
    FloatVector a0 = FloatVector.zero(F);
    FloatVector a1 = FloatVector.zero(F);
    FloatVector a2 = FloatVector.zero(F);
    FloatVector a3 = FloatVector.zero(F);
    for (int c = 0; c < upper; c += F.length()) {
      FloatVector xv = FloatVector.fromArray(F, x, x0 + c);
      a0 = FloatVector.fromArray(F, w, w0 + c).fma(xv, a0);
      a1 = FloatVector.fromArray(F, w, w1 + c).fma(xv, a1);
      a2 = FloatVector.fromArray(F, w, w2 + c).fma(xv, a2);
      a3 = FloatVector.fromArray(F, w, w3 + c).fma(xv, a3);
    }
    float s0 = sumLanes(a0);
    float s1 = sumLanes(a1);
    float s2 = sumLanes(a2);
    float s3 = sumLanes(a3);
    for (int c = upper; c < cols; c++) {
      float xc = x[x0 + c];
      s0 += w[w0 + c] * xc;
      s1 += w[w1 + c] * xc;
      s2 += w[w2 + c] * xc;
      s3 += w[w3 + c] * xc;
    }
    out[o] = s0;
    out[o + 1] = s1;
    out[o + 2] = s2;
    out[o + 3] = s3;
  }
}
