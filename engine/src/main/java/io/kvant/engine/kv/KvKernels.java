package io.kvant.engine.kv;

import io.kvant.engine.tensor.DType;
import io.kvant.engine.tensor.Fp8Codes;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * The inner loops of paged attention over quantized blocks: per-token dot products of a query with
 * stored keys, and weighted accumulation of stored values, dequantizing on the fly (no F32 copy of
 * a block is ever made), plus the encoders the write path uses.
 *
 * <p>Design note: each kernel has a scalar reference ({@code *Scalar}) that defines its result; the
 * Vector API version loads {@code L} bytes, widens them to {@code L} floats in one register ({@code
 * B2F}; for FP8 an integer bit trick instead of a table: E4M3's exponent and mantissa shifted into
 * an F32's fields, times 2^120, gives the exact value, subnormals included) and fuses
 * multiply-adds. The per-token scale is applied once per dot (or folded into the value weight), not
 * per element. Results differ from the references only by summation order. References: llama.cpp's
 * {@code ggml_vec_dot_q8_0}, vLLM's FP8 KV cache ({@code fp8_e4m3} with per-tensor/per-head
 * scales), the OCP 8-bit floating point spec (E4M3, max 448, no infinities). Stored keys, values
 * and codes are read from a {@link MemorySegment} (the paged store's off-heap blocks, or a heap
 * array wrapped by {@link MemorySegment#ofArray}), offsets counted in elements.
 */
final class KvKernels {
  private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
  private static final int L = F.length();

  /** Floats per vector: a paged block of this many tokens is one vector of keys per dimension. */
  static final int LANES = L;

  private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
  private static final VectorSpecies<Byte> B = L >= 8 ? byteSpecies(L) : null;
  private static final float TWO_POW_120 = 0x1p120f;
  private static final ByteOrder ORDER = ByteOrder.nativeOrder();
  private static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT;
  private static final ValueLayout.OfByte BYTE = ValueLayout.JAVA_BYTE;

  /** Largest finite E4M3 magnitude. */
  static final float FP8_MAX = 448f;

  private static final float[] FP8_TABLE = new float[256];

  static {
    for (int c = 0; c < 256; c++) {
      FP8_TABLE[c] = fp8Decode((byte) c);
    }
  }

  private KvKernels() {}

  private static VectorSpecies<Byte> byteSpecies(int lanes) {
    return VectorSpecies.of(byte.class, VectorShape.forBitSize(lanes * 8));
  }

  // ---------------------------------------------------------------- F32

  static float dotF32(float[] q, int qOff, float[] k, int kOff, int n) {
    int i = 0;
    float sum = 0f;
    if (n >= L) {
      FloatVector acc = FloatVector.zero(F);
      for (int bound = F.loopBound(n); i < bound; i += L) {
        acc = FloatVector.fromArray(F, q, qOff + i).fma(FloatVector.fromArray(F, k, kOff + i), acc);
      }
      sum = acc.reduceLanes(VectorOperators.ADD);
    }
    for (; i < n; i++) {
      sum += q[qOff + i] * k[kOff + i];
    }
    return sum;
  }

  static float dotF32Scalar(float[] q, int qOff, float[] k, int kOff, int n) {
    float sum = 0f;
    for (int i = 0; i < n; i++) {
      sum += q[qOff + i] * k[kOff + i];
    }
    return sum;
  }

  static void axpyF32(float a, float[] x, int xOff, float[] y, int yOff, int n) {
    int i = 0;
    if (n >= L) {
      FloatVector va = FloatVector.broadcast(F, a);
      for (int bound = F.loopBound(n); i < bound; i += L) {
        FloatVector.fromArray(F, x, xOff + i)
            .fma(va, FloatVector.fromArray(F, y, yOff + i))
            .intoArray(y, yOff + i);
      }
    }
    for (; i < n; i++) {
      y[yOff + i] += a * x[xOff + i];
    }
  }

  static void axpyF32Scalar(float a, float[] x, int xOff, float[] y, int yOff, int n) {
    for (int i = 0; i < n; i++) {
      y[yOff + i] += a * x[xOff + i];
    }
  }

  /**
   * {@code scores[sOff+t] = sum_d q[qOff+d] * k[kOff + d*stride + t]} for {@code t < n}: keys
   * stored transposed (for each dimension a run of {@code stride >= n} tokens), so lanes are tokens
   * and no horizontal sum is needed. Per token the products of even and of odd {@code d} are each
   * fused in increasing {@code d}, then added: {@link #scoresF32TScalar} defines the result.
   */
  static void scoresF32T(
      float[] q,
      int qOff,
      MemorySegment k,
      long kOff,
      int stride,
      int n,
      int hs,
      float[] scores,
      int sOff) {
    int t = 0;
    for (; t < n && t + L <= stride; t += L) {
      FloatVector a0 = FloatVector.zero(F);
      FloatVector a1 = FloatVector.zero(F);
      int d = 0;
      for (; d + 1 < hs; d += 2) {
        a0 = floats(k, kOff + (long) d * stride + t).fma(bcast(q[qOff + d]), a0);
        a1 = floats(k, kOff + (long) (d + 1) * stride + t).fma(bcast(q[qOff + d + 1]), a1);
      }
      if (d < hs) {
        a0 = floats(k, kOff + (long) d * stride + t).fma(bcast(q[qOff + d]), a0);
      }
      FloatVector sum = a0.add(a1);
      if (t + L <= n) {
        sum.intoArray(scores, sOff + t);
      } else {
        // The last, partial run: lanes past n read other slots of the block, and are not stored.
        sum.intoArray(scores, sOff + t, F.indexInRange(t, n));
      }
    }
    for (; t < n; t++) {
      scores[sOff + t] = scoreF32TScalar(q, qOff, k, kOff + t, stride, hs);
    }
  }

  /**
   * {@link #scoresF32T} of two blocks of {@code stride} tokens at once ({@code nA} scores from the
   * keys at {@code kOffA} into {@code scores[sOffA ..]}, {@code nB} from {@code kOffB} into {@code
   * scores[sOffB ..]}), each bitwise as {@link #scoresF32T} gives it. Where a block is one vector
   * of tokens (the paged store's 16-token blocks on AVX-512), one block alone is two dependent
   * chains of {@code hs/2} FMAs, bound by their latency; two blocks make four independent chains
   * sharing each query broadcast.
   */
  static void scoresF32T2(
      float[] q,
      int qOff,
      MemorySegment k,
      long kOffA,
      long kOffB,
      int stride,
      int nA,
      int nB,
      int hs,
      float[] scores,
      int sOffA,
      int sOffB) {
    if (stride != L) {
      scoresF32T(q, qOff, k, kOffA, stride, nA, hs, scores, sOffA);
      scoresF32T(q, qOff, k, kOffB, stride, nB, hs, scores, sOffB);
      return;
    }
    FloatVector a0 = FloatVector.zero(F);
    FloatVector a1 = FloatVector.zero(F);
    FloatVector b0 = FloatVector.zero(F);
    FloatVector b1 = FloatVector.zero(F);
    int d = 0;
    for (; d + 1 < hs; d += 2) {
      FloatVector q0 = bcast(q[qOff + d]);
      FloatVector q1 = bcast(q[qOff + d + 1]);
      long r0 = (long) d * stride;
      long r1 = r0 + stride;
      a0 = floats(k, kOffA + r0).fma(q0, a0);
      a1 = floats(k, kOffA + r1).fma(q1, a1);
      b0 = floats(k, kOffB + r0).fma(q0, b0);
      b1 = floats(k, kOffB + r1).fma(q1, b1);
    }
    if (d < hs) {
      FloatVector q0 = bcast(q[qOff + d]);
      a0 = floats(k, kOffA + (long) d * stride).fma(q0, a0);
      b0 = floats(k, kOffB + (long) d * stride).fma(q0, b0);
    }
    storeScores(a0.add(a1), nA, scores, sOffA);
    storeScores(b0.add(b1), nB, scores, sOffB);
  }

  /**
   * {@link #scoresF32T2} of four blocks of {@code L} tokens (the paged store's 16-token blocks on
   * AVX-512), each bitwise as {@link #scoresF32T} gives it: eight independent chains, and four
   * blocks' keys in flight at once. Why: a block's keys for one head are one 4 KiB run of memory,
   * and at long contexts each run starts with a miss the hardware prefetcher did not see coming;
   * more runs at once overlap those misses. The last block may be partial ({@code nD} tokens).
   */
  static void scoresF32T4(
      float[] q,
      int qOff,
      MemorySegment k,
      long kOffA,
      long kOffB,
      long kOffC,
      long kOffD,
      int stride,
      int nD,
      int hs,
      float[] scores,
      int sOff) {
    FloatVector a0 = FloatVector.zero(F);
    FloatVector a1 = FloatVector.zero(F);
    FloatVector b0 = FloatVector.zero(F);
    FloatVector b1 = FloatVector.zero(F);
    FloatVector c0 = FloatVector.zero(F);
    FloatVector c1 = FloatVector.zero(F);
    FloatVector d0 = FloatVector.zero(F);
    FloatVector d1 = FloatVector.zero(F);
    int d = 0;
    for (; d + 1 < hs; d += 2) {
      FloatVector q0 = bcast(q[qOff + d]);
      FloatVector q1 = bcast(q[qOff + d + 1]);
      long r0 = (long) d * stride;
      long r1 = r0 + stride;
      a0 = floats(k, kOffA + r0).fma(q0, a0);
      a1 = floats(k, kOffA + r1).fma(q1, a1);
      b0 = floats(k, kOffB + r0).fma(q0, b0);
      b1 = floats(k, kOffB + r1).fma(q1, b1);
      c0 = floats(k, kOffC + r0).fma(q0, c0);
      c1 = floats(k, kOffC + r1).fma(q1, c1);
      d0 = floats(k, kOffD + r0).fma(q0, d0);
      d1 = floats(k, kOffD + r1).fma(q1, d1);
    }
    if (d < hs) {
      FloatVector q0 = bcast(q[qOff + d]);
      long r0 = (long) d * stride;
      a0 = floats(k, kOffA + r0).fma(q0, a0);
      b0 = floats(k, kOffB + r0).fma(q0, b0);
      c0 = floats(k, kOffC + r0).fma(q0, c0);
      d0 = floats(k, kOffD + r0).fma(q0, d0);
    }
    storeScores(a0.add(a1), L, scores, sOff);
    storeScores(b0.add(b1), L, scores, sOff + L);
    storeScores(c0.add(c1), L, scores, sOff + 2 * L);
    storeScores(d0.add(d1), nD, scores, sOff + 3 * L);
  }

  private static void storeScores(FloatVector sum, int n, float[] scores, int sOff) {
    if (n == L) {
      sum.intoArray(scores, sOff);
    } else {
      // A partial block: lanes past n read other slots of the block, and are not stored.
      sum.intoArray(scores, sOff, F.indexInRange(0, n));
    }
  }

  static void scoresF32TScalar(
      float[] q,
      int qOff,
      MemorySegment k,
      long kOff,
      int stride,
      int n,
      int hs,
      float[] scores,
      int sOff) {
    for (int t = 0; t < n; t++) {
      scores[sOff + t] = scoreF32TScalar(q, qOff, k, kOff + t, stride, hs);
    }
  }

  private static float scoreF32TScalar(
      float[] q, int qOff, MemorySegment k, long kOff, int stride, int hs) {
    float a0 = 0f;
    float a1 = 0f;
    int d = 0;
    for (; d + 1 < hs; d += 2) {
      a0 = Math.fma(k.getAtIndex(FLOAT, kOff + (long) d * stride), q[qOff + d], a0);
      a1 = Math.fma(k.getAtIndex(FLOAT, kOff + (long) (d + 1) * stride), q[qOff + d + 1], a1);
    }
    if (d < hs) {
      a0 = Math.fma(k.getAtIndex(FLOAT, kOff + (long) d * stride), q[qOff + d], a0);
    }
    return a0 + a1;
  }

  /**
   * {@code out[outOff+i] += sum_t w[wOff+t] * v[vOff + t*stride + i]} for {@code i < hs}, each
   * element fused in increasing {@code t}: bitwise {@link #axpyF32} once per token, but each vector
   * of {@code out} is loaded and stored once, not once per token.
   */
  static void weightedSumF32(
      float[] w,
      int wOff,
      MemorySegment v,
      long vOff,
      int stride,
      int n,
      int hs,
      float[] out,
      int outOff) {
    int i = 0;
    // Four (then two) vectors of out at a time: independent FMA chains, so the loop is not bound
    // by the latency of one chain (a head of 32 floats is two vectors on AVX-512). Each element's
    // sequence of operations is unchanged.
    for (; i + 4 * L <= hs; i += 4 * L) {
      FloatVector a0 = FloatVector.fromArray(F, out, outOff + i);
      FloatVector a1 = FloatVector.fromArray(F, out, outOff + i + L);
      FloatVector a2 = FloatVector.fromArray(F, out, outOff + i + 2 * L);
      FloatVector a3 = FloatVector.fromArray(F, out, outOff + i + 3 * L);
      for (int t = 0; t < n; t++) {
        FloatVector wt = bcast(w[wOff + t]);
        long row = vOff + (long) t * stride + i;
        a0 = floats(v, row).fma(wt, a0);
        a1 = floats(v, row + L).fma(wt, a1);
        a2 = floats(v, row + 2 * L).fma(wt, a2);
        a3 = floats(v, row + 3 * L).fma(wt, a3);
      }
      a0.intoArray(out, outOff + i);
      a1.intoArray(out, outOff + i + L);
      a2.intoArray(out, outOff + i + 2 * L);
      a3.intoArray(out, outOff + i + 3 * L);
    }
    if (i + 2 * L <= hs) {
      FloatVector a0 = FloatVector.fromArray(F, out, outOff + i);
      FloatVector a1 = FloatVector.fromArray(F, out, outOff + i + L);
      for (int t = 0; t < n; t++) {
        FloatVector wt = bcast(w[wOff + t]);
        long row = vOff + (long) t * stride + i;
        a0 = floats(v, row).fma(wt, a0);
        a1 = floats(v, row + L).fma(wt, a1);
      }
      a0.intoArray(out, outOff + i);
      a1.intoArray(out, outOff + i + L);
      i += 2 * L;
    }
    for (; i + L <= hs; i += L) {
      FloatVector acc = FloatVector.fromArray(F, out, outOff + i);
      for (int t = 0; t < n; t++) {
        acc = floats(v, vOff + (long) t * stride + i).fma(bcast(w[wOff + t]), acc);
      }
      acc.intoArray(out, outOff + i);
    }
    for (; i < hs; i++) {
      float acc = out[outOff + i];
      for (int t = 0; t < n; t++) {
        // as axpyF32's tail: not fused
        acc += w[wOff + t] * v.getAtIndex(FLOAT, vOff + (long) t * stride + i);
      }
      out[outOff + i] = acc;
    }
  }

  private static FloatVector bcast(float v) {
    return FloatVector.broadcast(F, v);
  }

  /** The {@code L} floats at element {@code off} of {@code s}. */
  private static FloatVector floats(MemorySegment s, long off) {
    return FloatVector.fromMemorySegment(F, s, off * Float.BYTES, ORDER);
  }

  /** The {@code L} bytes at {@code off} of {@code s}. */
  private static ByteVector bytes(MemorySegment s, long off) {
    return ByteVector.fromMemorySegment(B, s, off, ORDER);
  }

  // ---------------------------------------------------------------- INT8

  /** Symmetric absmax quantization of {@code n} floats; returns the scale ({@code x ≈ scale*q}). */
  static float quantizeInt8(float[] src, int off, int n, MemorySegment dst, long dOff) {
    float amax = 0f;
    for (int i = 0; i < n; i++) {
      amax = Math.max(amax, Math.abs(src[off + i]));
    }
    if (amax == 0f) {
      dst.asSlice(dOff, n).fill((byte) 0);
      return 0f;
    }
    float scale = amax / 127f;
    float inv = 127f / amax;
    for (int i = 0; i < n; i++) {
      int qv = Math.round(src[off + i] * inv);
      dst.set(BYTE, dOff + i, (byte) Math.max(-127, Math.min(127, qv)));
    }
    return scale;
  }

  /** {@code sum q[i] * k[i]} over int8 keys, unscaled. */
  static float dotInt8(float[] q, int qOff, MemorySegment k, long kOff, int n) {
    int i = 0;
    float sum = 0f;
    if (B != null && n >= L) {
      FloatVector acc = FloatVector.zero(F);
      for (int bound = F.loopBound(n); i < bound; i += L) {
        FloatVector kv = (FloatVector) bytes(k, kOff + i).convertShape(VectorOperators.B2F, F, 0);
        acc = FloatVector.fromArray(F, q, qOff + i).fma(kv, acc);
      }
      sum = acc.reduceLanes(VectorOperators.ADD);
    }
    for (; i < n; i++) {
      sum += q[qOff + i] * k.get(BYTE, kOff + i);
    }
    return sum;
  }

  static float dotInt8Scalar(float[] q, int qOff, MemorySegment k, long kOff, int n) {
    float sum = 0f;
    for (int i = 0; i < n; i++) {
      sum += q[qOff + i] * k.get(BYTE, kOff + i);
    }
    return sum;
  }

  /** {@code y[i] += a * x[i]} over int8 values ({@code a} already includes the scale). */
  static void axpyInt8(float a, MemorySegment x, long xOff, float[] y, int yOff, int n) {
    int i = 0;
    if (B != null && n >= L) {
      FloatVector va = FloatVector.broadcast(F, a);
      for (int bound = F.loopBound(n); i < bound; i += L) {
        FloatVector xv = (FloatVector) bytes(x, xOff + i).convertShape(VectorOperators.B2F, F, 0);
        xv.fma(va, FloatVector.fromArray(F, y, yOff + i)).intoArray(y, yOff + i);
      }
    }
    for (; i < n; i++) {
      y[yOff + i] += a * x.get(BYTE, xOff + i);
    }
  }

  static void axpyInt8Scalar(float a, MemorySegment x, long xOff, float[] y, int yOff, int n) {
    for (int i = 0; i < n; i++) {
      y[yOff + i] += a * x.get(BYTE, xOff + i);
    }
  }

  // ---------------------------------------------------------------- FP8 E4M3

  /**
   * The value of an E4M3 code (0x7F and 0xFF, the NaN codes, are never produced by the encoder).
   */
  static float fp8Decode(byte code) {
    int c = code & 0xFF;
    int exp = (c >>> 3) & 0xF;
    int man = c & 7;
    float mag = exp == 0 ? man / 8f * 0x1p-6f : (1f + man / 8f) * Math.scalb(1f, exp - 7);
    return (c & 0x80) != 0 ? -mag : mag;
  }

  /** Round-to-nearest-even E4M3 code of {@code x}, saturating at ±448 (NaN too). */
  static byte fp8Encode(float x) {
    return (byte) Fp8Codes.encodeSaturating(DType.F8_E4M3, x);
  }

  /** Per-token absmax scaling into E4M3; returns the scale ({@code x ≈ scale * decode(q)}). */
  static float quantizeFp8(float[] src, int off, int n, MemorySegment dst, long dOff) {
    float amax = 0f;
    for (int i = 0; i < n; i++) {
      amax = Math.max(amax, Math.abs(src[off + i]));
    }
    if (amax == 0f) {
      dst.asSlice(dOff, n).fill((byte) 0);
      return 0f;
    }
    float inv = FP8_MAX / amax;
    for (int i = 0; i < n; i++) {
      dst.set(BYTE, dOff + i, fp8Encode(src[off + i] * inv));
    }
    return amax / FP8_MAX;
  }

  // ---------------------------------------------------------------- fixed scales

  /** The code range of {@code type}: 127 (INT8) or 448 (E4M3). */
  static float codeMax(KvCacheType type) {
    return type == KvCacheType.INT8 ? 127f : FP8_MAX;
  }

  /**
   * {@code code(y, s)} of {@link KvEncoding}: 0 when {@code s == 0}, else INT8 {@code clamp(round(y
   * / s), -127, 127)}, E4M3 {@code e4m3(y / s)} (saturating).
   */
  static byte code(KvCacheType type, float y, float s) {
    if (s == 0f) {
      return 0;
    }
    float z = y / s;
    return type == KvCacheType.INT8
        ? (byte) Math.max(-127, Math.min(127, Math.round(z)))
        : fp8Encode(z);
  }

  /** {@code value(code)}: the code as an integer (INT8) or its E4M3 value. */
  static float value(KvCacheType type, byte code) {
    return type == KvCacheType.INT8 ? code : FP8_TABLE[code & 0xFF];
  }

  /** {@code sum q[i] * value(k[i])}, unscaled, by {@code type}'s kernel. */
  static float dot(KvCacheType type, float[] q, int qOff, MemorySegment k, long kOff, int n) {
    return type == KvCacheType.INT8 ? dotInt8(q, qOff, k, kOff, n) : dotFp8(q, qOff, k, kOff, n);
  }

  /** {@code y[i] += a * value(x[i])} by {@code type}'s kernel. */
  static void axpy(
      KvCacheType type, float a, MemorySegment x, long xOff, float[] y, int yOff, int n) {
    if (type == KvCacheType.INT8) {
      axpyInt8(a, x, xOff, y, yOff, n);
    } else {
      axpyFp8(a, x, xOff, y, yOff, n);
    }
  }

  /**
   * The value sum of a run of {@code n} tokens of INT8 or FP8 codes (rows {@code hs} apart from
   * {@code vOff}): {@code out[outOff+i] += a_t * value(code_t[i])} for {@code t} in increasing
   * order, where {@code a_t = w[wOff+t] * sc[sOff+t]} ({@code w[wOff+t]} when {@code sc} is null),
   * bitwise {@link #axpy} once per token, but each vector of {@code out} loaded and stored once per
   * run instead of once per token (four at a time: independent FMA chains).
   */
  static void weightedSumCodes(
      KvCacheType type,
      float[] w,
      int wOff,
      float[] sc,
      int sOff,
      MemorySegment v,
      long vOff,
      int n,
      int hs,
      float[] out,
      int outOff) {
    boolean int8 = type == KvCacheType.INT8;
    int i = 0;
    if (B != null) {
      for (; i + 4 * L <= hs; i += 4 * L) {
        FloatVector a0 = FloatVector.fromArray(F, out, outOff + i);
        FloatVector a1 = FloatVector.fromArray(F, out, outOff + i + L);
        FloatVector a2 = FloatVector.fromArray(F, out, outOff + i + 2 * L);
        FloatVector a3 = FloatVector.fromArray(F, out, outOff + i + 3 * L);
        for (int t = 0; t < n; t++) {
          FloatVector va = bcast(sc != null ? w[wOff + t] * sc[sOff + t] : w[wOff + t]);
          long row = vOff + (long) t * hs + i;
          a0 = widen(int8, v, row).fma(va, a0);
          a1 = widen(int8, v, row + L).fma(va, a1);
          a2 = widen(int8, v, row + 2 * L).fma(va, a2);
          a3 = widen(int8, v, row + 3 * L).fma(va, a3);
        }
        a0.intoArray(out, outOff + i);
        a1.intoArray(out, outOff + i + L);
        a2.intoArray(out, outOff + i + 2 * L);
        a3.intoArray(out, outOff + i + 3 * L);
      }
      for (; i + L <= hs; i += L) {
        FloatVector a0 = FloatVector.fromArray(F, out, outOff + i);
        for (int t = 0; t < n; t++) {
          FloatVector va = bcast(sc != null ? w[wOff + t] * sc[sOff + t] : w[wOff + t]);
          a0 = widen(int8, v, vOff + (long) t * hs + i).fma(va, a0);
        }
        a0.intoArray(out, outOff + i);
      }
    }
    for (; i < hs; i++) {
      float acc = out[outOff + i];
      for (int t = 0; t < n; t++) {
        float a = sc != null ? w[wOff + t] * sc[sOff + t] : w[wOff + t];
        // as axpy's tail: not fused
        acc += a * value(int8, v, vOff + (long) t * hs + i);
      }
      out[outOff + i] = acc;
    }
  }

  /**
   * {@code out[oOff + t] = }{@link #dot}{@code (type, q, qOff, k, kOff + t*hs, hs)} for {@code t <
   * n}, four tokens at a time: each query vector loaded once for four tokens' codes, four
   * independent FMA chains. Each token's lanes are {@link #dot}'s exactly; the lane sums are {@code
   * reduceLanes(ADD)}, whose order the Vector API leaves unspecified (the interpreter and C2 differ
   * in the last bits), so the two agree bitwise only when both run compiled alike. A fixed-order
   * butterfly (as the matmul's {@code DotKernel.sumLanes}) made the FP8 scores 2.4x slower here at
   * head size 64, where the sum is a third of the work (AttentionTime, session 11).
   */
  static void dots(
      KvCacheType type,
      float[] q,
      int qOff,
      MemorySegment k,
      long kOff,
      int n,
      int hs,
      float[] out,
      int oOff) {
    boolean int8 = type == KvCacheType.INT8;
    int t = 0;
    if (B != null && hs >= L) {
      int bound = F.loopBound(hs);
      for (; t + 4 <= n; t += 4) {
        long k0 = kOff + (long) t * hs;
        long k1 = k0 + hs;
        long k2 = k1 + hs;
        long k3 = k2 + hs;
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = FloatVector.zero(F);
        FloatVector a2 = FloatVector.zero(F);
        FloatVector a3 = FloatVector.zero(F);
        for (int i = 0; i < bound; i += L) {
          FloatVector qv = FloatVector.fromArray(F, q, qOff + i);
          a0 = qv.fma(widen(int8, k, k0 + i), a0);
          a1 = qv.fma(widen(int8, k, k1 + i), a1);
          a2 = qv.fma(widen(int8, k, k2 + i), a2);
          a3 = qv.fma(widen(int8, k, k3 + i), a3);
        }
        float s0 = a0.reduceLanes(VectorOperators.ADD);
        float s1 = a1.reduceLanes(VectorOperators.ADD);
        float s2 = a2.reduceLanes(VectorOperators.ADD);
        float s3 = a3.reduceLanes(VectorOperators.ADD);
        for (int i = bound; i < hs; i++) {
          float qi = q[qOff + i];
          s0 += qi * value(int8, k, k0 + i);
          s1 += qi * value(int8, k, k1 + i);
          s2 += qi * value(int8, k, k2 + i);
          s3 += qi * value(int8, k, k3 + i);
        }
        out[oOff + t] = s0;
        out[oOff + t + 1] = s1;
        out[oOff + t + 2] = s2;
        out[oOff + t + 3] = s3;
      }
    }
    for (; t < n; t++) {
      out[oOff + t] = dot(type, q, qOff, k, kOff + (long) t * hs, hs);
    }
  }

  /** One code's value: INT8 as it is, FP8 E4M3 decoded. */
  private static float value(boolean int8, MemorySegment x, long off) {
    byte c = x.get(BYTE, off);
    return int8 ? c : FP8_TABLE[c & 0xFF];
  }

  /** {@code L} codes at {@code off} as floats: INT8 by value, FP8 E4M3 decoded. */
  private static FloatVector widen(boolean int8, MemorySegment x, long off) {
    return int8
        ? (FloatVector) bytes(x, off).convertShape(VectorOperators.B2F, F, 0)
        : fp8Widen(x, off);
  }

  /** Per-token absmax encoding by {@code type}; returns the scale. */
  static float quantize(
      KvCacheType type, float[] src, int off, int n, MemorySegment dst, long dOff) {
    return type == KvCacheType.INT8
        ? quantizeInt8(src, off, n, dst, dOff)
        : quantizeFp8(src, off, n, dst, dOff);
  }

  private static FloatVector fp8Widen(MemorySegment x, long off) {
    IntVector c = (IntVector) bytes(x, off).convertShape(VectorOperators.B2I, I, 0);
    IntVector bits =
        c.and(0x7F)
            .lanewise(VectorOperators.LSHL, 20)
            .or(c.and(0x80).lanewise(VectorOperators.LSHL, 24));
    return bits.reinterpretAsFloats().mul(TWO_POW_120);
  }

  static float dotFp8(float[] q, int qOff, MemorySegment k, long kOff, int n) {
    int i = 0;
    float sum = 0f;
    if (B != null && n >= L) {
      FloatVector acc = FloatVector.zero(F);
      for (int bound = F.loopBound(n); i < bound; i += L) {
        acc = FloatVector.fromArray(F, q, qOff + i).fma(fp8Widen(k, kOff + i), acc);
      }
      sum = acc.reduceLanes(VectorOperators.ADD);
    }
    for (; i < n; i++) {
      sum += q[qOff + i] * FP8_TABLE[k.get(BYTE, kOff + i) & 0xFF];
    }
    return sum;
  }

  static float dotFp8Scalar(float[] q, int qOff, MemorySegment k, long kOff, int n) {
    float sum = 0f;
    for (int i = 0; i < n; i++) {
      sum += q[qOff + i] * fp8Decode(k.get(BYTE, kOff + i));
    }
    return sum;
  }

  static void axpyFp8(float a, MemorySegment x, long xOff, float[] y, int yOff, int n) {
    int i = 0;
    if (B != null && n >= L) {
      FloatVector va = FloatVector.broadcast(F, a);
      for (int bound = F.loopBound(n); i < bound; i += L) {
        fp8Widen(x, xOff + i).fma(va, FloatVector.fromArray(F, y, yOff + i)).intoArray(y, yOff + i);
      }
    }
    for (; i < n; i++) {
      y[yOff + i] += a * FP8_TABLE[x.get(BYTE, xOff + i) & 0xFF];
    }
  }

  static void axpyFp8Scalar(float a, MemorySegment x, long xOff, float[] y, int yOff, int n) {
    for (int i = 0; i < n; i++) {
      y[yOff + i] += a * fp8Decode(x.get(BYTE, xOff + i));
    }
  }
}
