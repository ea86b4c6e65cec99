package io.kvant.engine.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * Dot products of a few decoded weight rows with one or more input vectors, using the preferred
 * float vector species.
 *
 * <p>Design note: every output element is computed by one sequence of float operations, whatever
 * kernel computes it: a vector accumulator starting at zero gets one lane-wise FMA per full vector
 * of columns, in increasing column order; its lanes are summed by a fixed butterfly ({@link
 * #sumLanes}); then the columns past the last full vector are added one at a time as {@code s +=
 * w*x} (product rounded, then sum). That is what makes {@link Tensor#matmul} bitwise independent of
 * batch size, row range, tiling and thread split. {@code reduceLanes(ADD)} is not used: its float
 * summation order is unspecified and does differ between the interpreter/C1 fallback and C2
 * intrinsics, which would make results depend on JIT state. {@link #dotReference} is a scalar model
 * of the sequence, checked bitwise against the kernels by the tests.
 *
 * <p>Batch 1 ({@link #dotRows}): rows four at a time, each {@code x} load feeding four FMAs on four
 * independent chains, lanes summed in registers.
 *
 * <p>Batch &gt; 1 ({@link #dotTile}): a register-blocked 4x4 micro-kernel, four weight rows by four
 * inputs, 16 accumulators: per column vector 4 weight loads and 4 input loads feed 16 FMAs (0.5
 * loads per FMA against 1.25 for the batch-1 kernel run once per input), with 4x2, 4x1 and 1x1
 * kernels for leftover inputs and rows. Columns are walked in {@link #KC} chunks with the
 * accumulators parked in a scratch array between chunks, so a chunk of the weight tile stays in L1
 * while all inputs stream past it. Lane sums happen in a separate pass over that array, one call
 * site in a loop: C2 refused to inline 16 lane sums into the 4x4 kernel (node-count cutoff), and a
 * vector passed to a method that is not inlined is boxed, which made the first version 10-50x
 * slower. Measured on AVX-512 (one thread, same run): 4x4 beat 4x6 (24 accumulators) slightly;
 * chunks of 1024 columns beat 256 and unchunked; padding the row strides against L1 set aliasing
 * did not help.
 */
final class DotKernel {
  static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

  /**
   * Columns per chunk of the batched kernels: 1 KiB of each weight row, so a four-row chunk (4 KiB)
   * stays in L1 while the inputs stream; a multiple of every float lane count (at most 64).
   */
  static final int KC = 1024;

  // Butterfly partners for lane sums: lane i is added to lane i ^ L/2, then i ^ L/4, ... i ^ 1.
  private static final VectorShuffle<Float> XOR_32 = xorShuffle(32);
  private static final VectorShuffle<Float> XOR_16 = xorShuffle(16);
  private static final VectorShuffle<Float> XOR_8 = xorShuffle(8);
  private static final VectorShuffle<Float> XOR_4 = xorShuffle(4);
  private static final VectorShuffle<Float> XOR_2 = xorShuffle(2);
  private static final VectorShuffle<Float> XOR_1 = xorShuffle(1);

  private DotKernel() {}

  private static VectorShuffle<Float> xorShuffle(int distance) {
    return VectorShuffle.fromOp(F, i -> (i ^ distance) % F.length());
  }

  /**
   * Sum of all lanes in a fixed order (pairwise butterfly: lane i plus lane i ^ L/2, then i ^ L/4,
   * ..., i ^ 1; lane 0 is the result), the same in every execution mode. Up to 64 lanes, the
   * largest float species.
   *
   * <p>This and the {@code fold} steps are kept under C2's {@code MaxInlineSize} (35 bytecodes) on
   * purpose: the kernels call it once per accumulator after their loop, which C2 does not count as
   * a hot call site, and a vector passed to a method that is not inlined is boxed on the heap (that
   * made the first 4x4 kernel 10-50x slower).
   */
  static float sumLanes(FloatVector v) {
    return fold1(fold2(fold4(fold8(fold16(fold32(v)))))).lane(0);
  }

  private static FloatVector fold32(FloatVector v) {
    return F.length() > 32 ? v.add(v.rearrange(XOR_32)) : v;
  }

  private static FloatVector fold16(FloatVector v) {
    return F.length() > 16 ? v.add(v.rearrange(XOR_16)) : v;
  }

  private static FloatVector fold8(FloatVector v) {
    return F.length() > 8 ? v.add(v.rearrange(XOR_8)) : v;
  }

  private static FloatVector fold4(FloatVector v) {
    return F.length() > 4 ? v.add(v.rearrange(XOR_4)) : v;
  }

  private static FloatVector fold2(FloatVector v) {
    return F.length() > 2 ? v.add(v.rearrange(XOR_2)) : v;
  }

  private static FloatVector fold1(FloatVector v) {
    return F.length() > 1 ? v.add(v.rearrange(XOR_1)) : v;
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

  /**
   * Batched form: {@code out[outOff + b*outStride + i] = dot(w row i, x row b)} for {@code i} in
   * {@code [0, n)} and {@code b} in {@code [0, batch)}, where weight row {@code i} is {@code
   * w[i*cols ..)} and input row {@code b} is {@code x[b*cols ..)}. Every element is bitwise equal
   * to {@link #dotRows} of that single row and input. {@code acc} is scratch of at least {@link
   * #accLength}{@code (n, batch)} floats.
   *
   * <p>The full-vector part of the columns is walked in chunks of {@link #KC} (a multiple of every
   * lane count, so chunking does not change any lane's sequence of FMAs). Within a chunk, blocks of
   * four weight rows by four inputs go through the {@link #dot4x4} micro-kernel (16 register
   * accumulators: each weight vector is loaded once per four inputs, each input vector once per
   * four rows); leftover inputs use the 4x2 and 4x1 kernels, leftover rows the 1x1 kernel. The
   * accumulators live in {@code acc} between chunks (a float stored and reloaded is unchanged), so
   * the chunk of weights being reused stays in L1 while the inputs stream past it; the first chunk
   * starts them at zero in registers rather than loading a zero-filled {@code acc} (no fill pass:
   * 1.06-1.11x on a 256-column F16 product at batch 16, session 13). A final pass reduces each
   * accumulator with {@link #sumLanes} and adds the scalar tail.
   */
  static void dotTile(
      float[] w,
      int ws,
      int n,
      int cols,
      float[] x,
      int xs,
      int batch,
      float[] out,
      int outOff,
      int outStride,
      float[] acc) {
    int len = F.length();
    int upper = F.loopBound(cols);
    int bStride = n * len; // acc[(b*n + i)*len ..) is the accumulator of row i, input b
    if (upper == 0) {
      java.util.Arrays.fill(acc, 0, batch * bStride, 0f);
    }
    for (int k0 = 0; k0 < upper; k0 += KC) {
      int k1 = Math.min(upper, k0 + KC);
      // The first chunk starts its accumulators at zero instead of loading them (no fill pass).
      boolean fresh = k0 == 0;
      int i = 0;
      for (; i + 4 <= n; i += 4) {
        int w0 = i * ws;
        int b = 0;
        for (; b + 4 <= batch; b += 4) {
          dot4x4(w, w0, ws, x, b * xs, xs, k0, k1, fresh, acc, b * bStride + i * len, bStride);
        }
        if (b + 2 <= batch) {
          dot4x2(w, w0, ws, x, b * xs, xs, k0, k1, fresh, acc, b * bStride + i * len, bStride);
          b += 2;
        }
        if (b < batch) {
          dot4x1(w, w0, ws, x, b * xs, k0, k1, fresh, acc, b * bStride + i * len);
        }
      }
      for (; i < n; i++) {
        for (int b = 0; b < batch; b++) {
          dot1x1(w, i * ws, x, b * xs, k0, k1, fresh, acc, b * bStride + i * len);
        }
      }
    }
    for (int b = 0; b < batch; b++) {
      for (int i = 0; i < n; i++) {
        float s = sumLanes(FloatVector.fromArray(F, acc, b * bStride + i * len));
        int w0 = i * ws;
        int x0 = b * xs;
        for (int c = upper; c < cols; c++) {
          s += w[w0 + c] * x[x0 + c];
        }
        out[outOff + b * outStride + i] = s;
      }
    }
  }

  /** An accumulator at the start of a chunk: zero for the first chunk, else as parked in acc. */
  private static FloatVector start(boolean fresh, float[] acc, int a) {
    return fresh ? FloatVector.zero(F) : FloatVector.fromArray(F, acc, a);
  }

  /** Scratch floats {@link #dotTile} needs for {@code n} rows and {@code batch} inputs. */
  static int accLength(int n, int batch) {
    return n * batch * F.length();
  }

  /**
   * Scalar model of every kernel here, for tests: lane {@code l} of an accumulator sums {@code
   * w[c]*x[c]} (fused) over {@code c = l, l+L, l+2L, ...} below {@code loopBound(cols)}, the lanes
   * are combined by the butterfly of {@link #sumLanes}, then the tail is added with separately
   * rounded products.
   */
  static float dotReference(float[] w, int w0, int cols, float[] x, int x0) {
    int len = F.length();
    int upper = F.loopBound(cols);
    float[] acc = new float[len];
    for (int c = 0; c < upper; c += len) {
      for (int l = 0; l < len; l++) {
        acc[l] = Math.fma(w[w0 + c + l], x[x0 + c + l], acc[l]);
      }
    }
    for (int d = len / 2; d >= 1; d /= 2) {
      float[] next = new float[len];
      for (int l = 0; l < len; l++) {
        next[l] = acc[l] + acc[l ^ d];
      }
      acc = next;
    }
    float s = acc[0];
    for (int c = upper; c < cols; c++) {
      s += w[w0 + c] * x[x0 + c];
    }
    return s;
  }

  /**
   * {@code dot(w[w0 .. w0+cols), x[x0 .. x0+cols))}: the bits {@link #dotRows} and {@link #dotTile}
   * give that row and input.
   */
  static float dot(float[] w, int w0, int cols, float[] x, int x0) {
    return dot1(w, w0, cols, x, x0);
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

  private static void dot1x1(
      float[] w, int w0, float[] x, int x0, int k0, int k1, boolean fresh, float[] acc, int a) {
    FloatVector a0 = start(fresh, acc, a);
    for (int c = k0; c < k1; c += F.length()) {
      a0 = FloatVector.fromArray(F, w, w0 + c).fma(FloatVector.fromArray(F, x, x0 + c), a0);
    }
    a0.intoArray(acc, a);
  }

  private static void dot4x1(
      float[] w,
      int w0,
      int ws,
      float[] x,
      int x0,
      int k0,
      int k1,
      boolean fresh,
      float[] acc,
      int a) {
    int w1 = w0 + ws;
    int w2 = w1 + ws;
    int w3 = w2 + ws;
    int len = F.length();
    FloatVector a0 = start(fresh, acc, a);
    FloatVector a1 = start(fresh, acc, a + len);
    FloatVector a2 = start(fresh, acc, a + 2 * len);
    FloatVector a3 = start(fresh, acc, a + 3 * len);
    for (int c = k0; c < k1; c += len) {
      FloatVector xv = FloatVector.fromArray(F, x, x0 + c);
      a0 = FloatVector.fromArray(F, w, w0 + c).fma(xv, a0);
      a1 = FloatVector.fromArray(F, w, w1 + c).fma(xv, a1);
      a2 = FloatVector.fromArray(F, w, w2 + c).fma(xv, a2);
      a3 = FloatVector.fromArray(F, w, w3 + c).fma(xv, a3);
    }
    a0.intoArray(acc, a);
    a1.intoArray(acc, a + len);
    a2.intoArray(acc, a + 2 * len);
    a3.intoArray(acc, a + 3 * len);
  }

  /** Four weight rows by two inputs; accumulators of input {@code j} at {@code a + j*aStride}. */
  private static void dot4x2(
      float[] w,
      int w0,
      int ws,
      float[] x,
      int x0,
      int xs,
      int k0,
      int k1,
      boolean fresh,
      float[] acc,
      int a,
      int aStride) {
    int w1 = w0 + ws;
    int w2 = w1 + ws;
    int w3 = w2 + ws;
    int x1 = x0 + xs;
    int len = F.length();
    int p0 = a;
    int p1 = a + aStride;
    FloatVector a00 = start(fresh, acc, p0);
    FloatVector a10 = start(fresh, acc, p0 + len);
    FloatVector a20 = start(fresh, acc, p0 + 2 * len);
    FloatVector a30 = start(fresh, acc, p0 + 3 * len);
    FloatVector a01 = start(fresh, acc, p1);
    FloatVector a11 = start(fresh, acc, p1 + len);
    FloatVector a21 = start(fresh, acc, p1 + 2 * len);
    FloatVector a31 = start(fresh, acc, p1 + 3 * len);
    for (int c = k0; c < k1; c += len) {
      FloatVector v0 = FloatVector.fromArray(F, w, w0 + c);
      FloatVector v1 = FloatVector.fromArray(F, w, w1 + c);
      FloatVector v2 = FloatVector.fromArray(F, w, w2 + c);
      FloatVector v3 = FloatVector.fromArray(F, w, w3 + c);
      FloatVector xa = FloatVector.fromArray(F, x, x0 + c);
      a00 = v0.fma(xa, a00);
      a10 = v1.fma(xa, a10);
      a20 = v2.fma(xa, a20);
      a30 = v3.fma(xa, a30);
      FloatVector xb = FloatVector.fromArray(F, x, x1 + c);
      a01 = v0.fma(xb, a01);
      a11 = v1.fma(xb, a11);
      a21 = v2.fma(xb, a21);
      a31 = v3.fma(xb, a31);
    }
    a00.intoArray(acc, p0);
    a10.intoArray(acc, p0 + len);
    a20.intoArray(acc, p0 + 2 * len);
    a30.intoArray(acc, p0 + 3 * len);
    a01.intoArray(acc, p1);
    a11.intoArray(acc, p1 + len);
    a21.intoArray(acc, p1 + 2 * len);
    a31.intoArray(acc, p1 + 3 * len);
  }

  /**
   * Four weight rows by four inputs, 16 accumulators; input {@code j}'s at {@code a + j*aStride}.
   */
  private static void dot4x4(
      float[] w,
      int w0,
      int ws,
      float[] x,
      int x0,
      int xs,
      int k0,
      int k1,
      boolean fresh,
      float[] acc,
      int a,
      int aStride) {
    int w1 = w0 + ws;
    int w2 = w1 + ws;
    int w3 = w2 + ws;
    int x1 = x0 + xs;
    int x2 = x1 + xs;
    int x3 = x2 + xs;
    int len = F.length();
    int p0 = a;
    int p1 = a + aStride;
    int p2 = a + 2 * aStride;
    int p3 = a + 3 * aStride;
    FloatVector a00 = start(fresh, acc, p0);
    FloatVector a10 = start(fresh, acc, p0 + len);
    FloatVector a20 = start(fresh, acc, p0 + 2 * len);
    FloatVector a30 = start(fresh, acc, p0 + 3 * len);
    FloatVector a01 = start(fresh, acc, p1);
    FloatVector a11 = start(fresh, acc, p1 + len);
    FloatVector a21 = start(fresh, acc, p1 + 2 * len);
    FloatVector a31 = start(fresh, acc, p1 + 3 * len);
    FloatVector a02 = start(fresh, acc, p2);
    FloatVector a12 = start(fresh, acc, p2 + len);
    FloatVector a22 = start(fresh, acc, p2 + 2 * len);
    FloatVector a32 = start(fresh, acc, p2 + 3 * len);
    FloatVector a03 = start(fresh, acc, p3);
    FloatVector a13 = start(fresh, acc, p3 + len);
    FloatVector a23 = start(fresh, acc, p3 + 2 * len);
    FloatVector a33 = start(fresh, acc, p3 + 3 * len);
    for (int c = k0; c < k1; c += len) {
      FloatVector v0 = FloatVector.fromArray(F, w, w0 + c);
      FloatVector v1 = FloatVector.fromArray(F, w, w1 + c);
      FloatVector v2 = FloatVector.fromArray(F, w, w2 + c);
      FloatVector v3 = FloatVector.fromArray(F, w, w3 + c);
      FloatVector xa = FloatVector.fromArray(F, x, x0 + c);
      a00 = v0.fma(xa, a00);
      a10 = v1.fma(xa, a10);
      a20 = v2.fma(xa, a20);
      a30 = v3.fma(xa, a30);
      FloatVector xb = FloatVector.fromArray(F, x, x1 + c);
      a01 = v0.fma(xb, a01);
      a11 = v1.fma(xb, a11);
      a21 = v2.fma(xb, a21);
      a31 = v3.fma(xb, a31);
      FloatVector xc = FloatVector.fromArray(F, x, x2 + c);
      a02 = v0.fma(xc, a02);
      a12 = v1.fma(xc, a12);
      a22 = v2.fma(xc, a22);
      a32 = v3.fma(xc, a32);
      FloatVector xd = FloatVector.fromArray(F, x, x3 + c);
      a03 = v0.fma(xd, a03);
      a13 = v1.fma(xd, a13);
      a23 = v2.fma(xd, a23);
      a33 = v3.fma(xd, a33);
    }
    a00.intoArray(acc, p0);
    a10.intoArray(acc, p0 + len);
    a20.intoArray(acc, p0 + 2 * len);
    a30.intoArray(acc, p0 + 3 * len);
    a01.intoArray(acc, p1);
    a11.intoArray(acc, p1 + len);
    a21.intoArray(acc, p1 + 2 * len);
    a31.intoArray(acc, p1 + 3 * len);
    a02.intoArray(acc, p2);
    a12.intoArray(acc, p2 + len);
    a22.intoArray(acc, p2 + 2 * len);
    a32.intoArray(acc, p2 + 3 * len);
    a03.intoArray(acc, p3);
    a13.intoArray(acc, p3 + len);
    a23.intoArray(acc, p3 + 2 * len);
    a33.intoArray(acc, p3 + 3 * len);
  }
}
