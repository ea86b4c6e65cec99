package io.kvant.engine.kv;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class KvKernelsTest {
  private static final int[] LENGTHS = {1, 3, 7, 8, 9, 16, 31, 64, 65, 128, 257};

  private static float[] randomFloats(SplittableRandom r, int n, float range) {
    float[] a = new float[n];
    for (int i = 0; i < n; i++) {
      a[i] = (float) (r.nextDouble(-1, 1) * range);
    }
    return a;
  }

  private static byte[] randomBytes(SplittableRandom r, int n, boolean fp8) {
    byte[] b = new byte[n];
    for (int i = 0; i < n; i++) {
      int c = r.nextInt(256);
      if (fp8 && (c & 0x7F) == 0x7F) {
        c = c - 1; // skip NaN codes, never produced by the encoder
      }
      b[i] = (byte) c;
    }
    return b;
  }

  private static float tol(float ref, int n, float mag) {
    return 1e-5f * n * mag + 1e-4f * Math.abs(ref);
  }

  @Test
  void vectorKernelsMatchScalarReferencesOnRandomInputs() {
    SplittableRandom r = new SplittableRandom(42);
    for (int trial = 0; trial < 20; trial++) {
      for (int n : LENGTHS) {
        int qOff = r.nextInt(5);
        int kOff = r.nextInt(5);
        float[] q = randomFloats(r, n + qOff, 3f);
        float[] kf = randomFloats(r, n + kOff, 3f);
        byte[] k8 = randomBytes(r, n + kOff, false);
        byte[] kfp8 = randomBytes(r, n + kOff, true);

        float ref = KvKernels.dotF32Scalar(q, qOff, kf, kOff, n);
        assertThat(KvKernels.dotF32(q, qOff, kf, kOff, n)).isCloseTo(ref, within(tol(ref, n, 9)));
        ref = KvKernels.dotInt8Scalar(q, qOff, MemorySegment.ofArray(k8), kOff, n);
        assertThat(KvKernels.dotInt8(q, qOff, MemorySegment.ofArray(k8), kOff, n))
            .isCloseTo(ref, within(tol(ref, n, 400)));
        ref = KvKernels.dotFp8Scalar(q, qOff, MemorySegment.ofArray(kfp8), kOff, n);
        assertThat(KvKernels.dotFp8(q, qOff, MemorySegment.ofArray(kfp8), kOff, n))
            .isCloseTo(ref, within(tol(ref, n, 1400)));

        float a = (float) r.nextDouble(-2, 2);
        float[] y0 = randomFloats(r, n + qOff, 1f);
        float[] y1 = y0.clone();
        KvKernels.axpyF32Scalar(a, kf, kOff, y0, qOff, n);
        KvKernels.axpyF32(a, kf, kOff, y1, qOff, n);
        assertThat(y1).containsExactly(y0, within(1e-5f));
        y0 = randomFloats(r, n + qOff, 1f);
        y1 = y0.clone();
        KvKernels.axpyInt8Scalar(a, MemorySegment.ofArray(k8), kOff, y0, qOff, n);
        KvKernels.axpyInt8(a, MemorySegment.ofArray(k8), kOff, y1, qOff, n);
        assertThat(y1).containsExactly(y0, within(1e-3f));
        y0 = randomFloats(r, n + qOff, 1f);
        y1 = y0.clone();
        KvKernels.axpyFp8Scalar(a, MemorySegment.ofArray(kfp8), kOff, y0, qOff, n);
        KvKernels.axpyFp8(a, MemorySegment.ofArray(kfp8), kOff, y1, qOff, n);
        assertThat(y1).containsExactly(y0, within(1e-3f));
      }
    }
  }

  @Test
  void transposedScoresEqualTheirScalarReferenceBitwise() {
    SplittableRandom r = new SplittableRandom(7);
    // Block sizes below, at and above the vector length; partial blocks; odd head sizes.
    for (int stride : new int[] {1, 8, 16, 24, 32, 64}) {
      for (int hs : new int[] {1, 7, 32, 64}) {
        for (int n : new int[] {1, stride / 2 + 1, stride}) {
          if (n > stride) {
            continue;
          }
          int kOff = r.nextInt(4);
          float[] q = randomFloats(r, hs + 3, 2f);
          float[] k = randomFloats(r, kOff + hs * stride, 2f);
          float[] vec = new float[n + 2];
          float[] ref = new float[n + 2];
          vec[n + 1] = ref[n + 1] = 42f; // past the scores: untouched
          KvKernels.scoresF32T(q, 3, MemorySegment.ofArray(k), kOff, stride, n, hs, vec, 1);
          KvKernels.scoresF32TScalar(q, 3, MemorySegment.ofArray(k), kOff, stride, n, hs, ref, 1);
          assertThat(vec).as("stride %d hs %d n %d", stride, hs, n).containsExactly(ref);
          for (int t = 0; t < n; t++) {
            double exact = 0;
            for (int d = 0; d < hs; d++) {
              exact += (double) q[3 + d] * k[kOff + d * stride + t];
            }
            assertThat((double) vec[1 + t]).isCloseTo(exact, within(1e-4 * hs));
          }
        }
      }
    }
  }

  @Test
  void twoBlockScoresEqualOneBlockAtATimeBitwise() {
    SplittableRandom r = new SplittableRandom(11);
    for (int stride : new int[] {8, 16, 24, 32}) {
      for (int hs : new int[] {1, 7, 32, 64}) {
        for (int nB : new int[] {1, stride / 2 + 1, stride}) {
          int nA = stride;
          float[] q = randomFloats(r, hs + 3, 2f);
          // two blocks, the second not right after the first (as in the paged store)
          int kOffA = r.nextInt(4);
          int kOffB = kOffA + hs * stride + r.nextInt(9);
          float[] k = randomFloats(r, kOffB + hs * stride, 2f);
          float[] two = new float[nA + nB + 3];
          float[] one = new float[nA + nB + 3];
          two[nA + nB + 2] = one[nA + nB + 2] = 42f; // past the scores: untouched
          MemorySegment ks = MemorySegment.ofArray(k);
          KvKernels.scoresF32T2(q, 3, ks, kOffA, kOffB, stride, nA, nB, hs, two, 1, 1 + nA);
          KvKernels.scoresF32T(q, 3, ks, kOffA, stride, nA, hs, one, 1);
          KvKernels.scoresF32T(q, 3, ks, kOffB, stride, nB, hs, one, 1 + nA);
          assertThat(two).as("stride %d hs %d nB %d", stride, hs, nB).containsExactly(one);
        }
      }
    }
  }

  @Test
  void fourBlockScoresEqualOneBlockAtATimeBitwise() {
    SplittableRandom r = new SplittableRandom(12);
    int l = KvKernels.LANES;
    for (int hs : new int[] {1, 7, 32, 64, 128}) {
      for (int nD : new int[] {1, l / 2 + 1, l}) {
        float[] q = randomFloats(r, hs + 3, 2f);
        float[] k = randomFloats(r, 16 * hs * l + 40, 2f);
        MemorySegment ks = MemorySegment.ofArray(k);
        int total = 3 * l + nD;
        // four blocks of one vector of tokens at scattered places, not in order (as in the paged
        // store), or the four vectors of tokens of one block of 4L
        int block = hs * l;
        long[][] layouts = {
          {3L * block + r.nextInt(4), r.nextInt(4), 2L * block + 5, block + r.nextInt(9) + 8},
          {7, 7 + l, 7 + 2 * l, 7 + 3 * l}
        };
        int[] strides = {l, 4 * l};
        for (int c = 0; c < 2; c++) {
          long[] offs = layouts[c];
          int stride = strides[c];
          float[] four = new float[total + 3];
          float[] one = new float[total + 3];
          four[total + 2] = one[total + 2] = 42f; // past the scores: untouched
          KvKernels.scoresF32T4(
              q, 3, ks, offs[0], offs[1], offs[2], offs[3], stride, nD, hs, four, 1);
          for (int b = 0; b < 4; b++) {
            // one vector of tokens of a block whose rows are `stride` apart
            int n = b < 3 ? l : nD;
            KvKernels.scoresF32T(q, 3, ks, offs[b], stride, n, hs, one, 1 + b * l);
          }
          assertThat(four).as("stride %d hs %d nD %d", stride, hs, nD).containsExactly(one);
        }
      }
    }
  }

  /**
   * The four-token kernel computes each token's lanes exactly as {@link KvKernels#dot} does (the
   * same FMA chain per lane); only the final {@code reduceLanes(ADD)}, whose order the Vector API
   * leaves unspecified and which does differ between the interpreter and C2, can part them. So the
   * scores agree to within a reordering of the lane sum: {@code lanes * 2^-23 * sum |q_i k_i|}.
   * (This test asserted bitwise equality until it failed in full builds where one of the two
   * methods was compiled and the other not.)
   */
  @Test
  void codeDotsFourTokensAtATimeAgreeWithOneDotPerTokenUpToTheLaneSumOrder() {
    SplittableRandom r = new SplittableRandom(15);
    for (KvCacheType type : new KvCacheType[] {KvCacheType.INT8, KvCacheType.FP8_E4M3}) {
      for (int hs : new int[] {1, 7, 16, 32, 48, 64, 100, 128}) {
        for (int n : new int[] {1, 3, 4, 5, 16}) {
          byte[] codes = new byte[3 + n * hs];
          for (int i = 0; i < codes.length; i++) {
            int c = r.nextInt(256);
            codes[i] = (byte) (type == KvCacheType.FP8_E4M3 && (c & 0x7F) == 0x7F ? c - 1 : c);
          }
          MemorySegment k = MemorySegment.ofArray(codes);
          float[] q = randomFloats(r, hs + 2, 1f);
          float[] four = new float[n + 3];
          four[n + 2] = 42f; // past the scores: untouched
          KvKernels.dots(type, q, 2, k, 3, n, hs, four, 1);
          assertThat(four[0]).isZero();
          assertThat(four[n + 2]).isEqualTo(42f);
          float[] absQ = new float[q.length];
          for (int i = 0; i < q.length; i++) {
            absQ[i] = Math.abs(q[i]);
          }
          for (int t = 0; t < n; t++) {
            long kOff = 3 + (long) t * hs;
            float one = KvKernels.dot(type, q, 2, k, kOff, hs);
            double magnitude = 0;
            for (int i = 0; i < hs; i++) {
              magnitude += absQ[2 + i] * Math.abs(codeValue(type, codes[(int) kOff + i]));
            }
            double bound = KvKernels.LANES * 0x1p-23 * magnitude;
            assertThat((double) four[1 + t])
                .as("%s hs %d n %d token %d", type, hs, n, t)
                .isCloseTo(one, within(bound));
          }
        }
      }
    }
  }

  private static float codeValue(KvCacheType type, byte c) {
    return type == KvCacheType.INT8 ? c : KvKernels.fp8Decode(c);
  }

  @Test
  void codeWeightedSumIsBitwiseAnAxpyPerToken() {
    SplittableRandom r = new SplittableRandom(14);
    for (KvCacheType type : new KvCacheType[] {KvCacheType.INT8, KvCacheType.FP8_E4M3}) {
      for (int hs : new int[] {1, 7, 16, 32, 48, 64, 100, 128}) {
        for (int n : new int[] {1, 5, 16}) {
          byte[] codes = new byte[3 + n * hs];
          for (int i = 0; i < codes.length; i++) {
            int c = r.nextInt(256);
            // FP8: never the NaN codes 0x7F / 0xFF, which the encoder does not produce
            codes[i] = (byte) (type == KvCacheType.FP8_E4M3 && (c & 0x7F) == 0x7F ? c - 1 : c);
          }
          MemorySegment v = MemorySegment.ofArray(codes);
          float[] w = randomFloats(r, n + 2, 1f);
          float[] sc = r.nextBoolean() ? randomFloats(r, n + 4, 0.1f) : null;
          float[] a = randomFloats(r, hs + 5, 1f);
          float[] b = a.clone();
          KvKernels.weightedSumCodes(type, w, 2, sc, 4, v, 3, n, hs, a, 5);
          for (int t = 0; t < n; t++) {
            float wt = sc != null ? w[2 + t] * sc[4 + t] : w[2 + t];
            KvKernels.axpy(type, wt, v, 3 + (long) t * hs, b, 5, hs);
          }
          assertThat(a).as("%s hs %d n %d scales %s", type, hs, n, sc != null).containsExactly(b);
        }
      }
    }
  }

  @Test
  void weightedSumIsBitwiseAnAxpyPerToken() {
    SplittableRandom r = new SplittableRandom(9);
    for (int hs : new int[] {1, 7, 16, 32, 48, 64, 100, 128}) {
      for (int n : new int[] {1, 5, 16, 33}) {
        int stride = hs + r.nextInt(3);
        float[] v = randomFloats(r, 2 + n * stride, 2f);
        float[] w = randomFloats(r, n + 1, 1f);
        float[] a = randomFloats(r, hs + 4, 1f);
        float[] b = a.clone();
        KvKernels.weightedSumF32(w, 1, MemorySegment.ofArray(v), 2, stride, n, hs, a, 3);
        for (int t = 0; t < n; t++) {
          KvKernels.axpyF32(w[1 + t], v, 2 + t * stride, b, 3, hs);
        }
        assertThat(a).as("hs %d n %d", hs, n).containsExactly(b);
      }
    }
  }

  @Test
  void fp8VectorDecodeIsExactForEveryCode() {
    // the bit trick of the vector path against the arithmetic definition, code by code
    for (int c = 0; c < 256; c++) {
      if ((c & 0x7F) == 0x7F) {
        continue;
      }
      byte[] k = new byte[64];
      java.util.Arrays.fill(k, (byte) c);
      float[] one = new float[64];
      java.util.Arrays.fill(one, 1f);
      float want = 64 * KvKernels.fp8Decode((byte) c);
      assertThat(KvKernels.dotFp8(one, 0, MemorySegment.ofArray(k), 0, 64))
          .as("code %02x", c)
          .isEqualTo(want);
    }
    assertThat(KvKernels.fp8Decode((byte) 0x7E)).isEqualTo(448f);
    assertThat(KvKernels.fp8Decode((byte) 0x01)).isEqualTo(0x1p-9f);
    assertThat(KvKernels.fp8Decode((byte) 0x08)).isEqualTo(0x1p-6f);
    assertThat(KvKernels.fp8Decode((byte) 0xC0)).isEqualTo(-2f);
  }

  @Test
  void fp8EncodeRoundsToNearestAndRoundTripsEveryCode() {
    for (int c = 0; c < 256; c++) {
      if ((c & 0x7F) == 0x7F || c == 0x80) {
        continue;
      }
      float v = KvKernels.fp8Decode((byte) c);
      assertThat(KvKernels.fp8Encode(v) & 0xFF).as("code %02x", c).isEqualTo(c);
    }
    SplittableRandom r = new SplittableRandom(7);
    for (int i = 0; i < 20_000; i++) {
      float x = (float) (r.nextDouble(-1, 1) * Math.pow(2, r.nextInt(-12, 10)));
      float got = KvKernels.fp8Decode(KvKernels.fp8Encode(x));
      float clamped = Math.max(-448f, Math.min(448f, x));
      // nearest representable: relative error at most 2^-4, or half a subnormal step
      assertThat(Math.abs(got - clamped))
          .isLessThanOrEqualTo(Math.max(Math.abs(clamped) / 16f, 0x1p-10f) * 1.0001f);
    }
    assertThat(KvKernels.fp8Encode(1e6f)).isEqualTo((byte) 0x7E);
    assertThat(KvKernels.fp8Encode(-1e6f)).isEqualTo((byte) 0xFE);
  }

  /** The arithmetic encoder that the bit-level one replaced: exponent, scaled mantissa, rint. */
  private static byte fp8EncodeArithmetic(float x) {
    int sign = Float.floatToRawIntBits(x) < 0 ? 0x80 : 0;
    float a = Math.abs(x);
    int code;
    if (!(a < 448f)) {
      code = 0x7E;
    } else if (a < 0x1p-6f) {
      code = (int) Math.rint(a * 512f);
    } else {
      int e = Math.getExponent(a);
      int m = (int) Math.rint((a * Math.scalb(1f, -e) - 1f) * 8f);
      if (m == 8) {
        m = 0;
        e++;
      }
      code = Math.min(0x7E, ((e + 7) << 3) | m);
    }
    return (byte) (sign | code);
  }

  @Test
  void fp8EncodeEqualsTheArithmeticEncoderOnASweepOfFloats() {
    // every 211th float from 0 to beyond 448, both signs, plus NaN and infinities
    int end = Float.floatToRawIntBits(1024f);
    for (int bits = 0; bits <= end; bits += 211) {
      float x = Float.intBitsToFloat(bits);
      assertThat(KvKernels.fp8Encode(x)).as("x=%s", x).isEqualTo(fp8EncodeArithmetic(x));
      assertThat(KvKernels.fp8Encode(-x)).as("x=-%s", x).isEqualTo(fp8EncodeArithmetic(-x));
    }
    for (int c = 0; c < 0x7E; c++) {
      // the halfway points between neighbouring codes, and one ulp either side
      float mid = (KvKernels.fp8Decode((byte) c) + KvKernels.fp8Decode((byte) (c + 1))) / 2;
      for (float x : new float[] {mid, Math.nextDown(mid), Math.nextUp(mid)}) {
        assertThat(KvKernels.fp8Encode(x)).as("x=%s", x).isEqualTo(fp8EncodeArithmetic(x));
      }
    }
    for (float x : new float[] {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY}) {
      assertThat(KvKernels.fp8Encode(x)).isEqualTo(fp8EncodeArithmetic(x));
    }
  }

  @Test
  void quantizersBoundTheErrorByHalfAStep() {
    SplittableRandom r = new SplittableRandom(3);
    for (int trial = 0; trial < 200; trial++) {
      int n = 1 + r.nextInt(128);
      float[] x = randomFloats(r, n, (float) Math.pow(10, r.nextInt(-3, 3)));
      byte[] q = new byte[n];
      float s = KvKernels.quantizeInt8(x, 0, n, MemorySegment.ofArray(q), 0);
      for (int i = 0; i < n; i++) {
        assertThat(Math.abs(q[i] * s - x[i])).isLessThanOrEqualTo(s * 0.5f * 1.001f + 1e-12f);
      }
      float s8 = KvKernels.quantizeFp8(x, 0, n, MemorySegment.ofArray(q), 0);
      for (int i = 0; i < n; i++) {
        float back = KvKernels.fp8Decode(q[i]) * s8;
        assertThat(Math.abs(back - x[i]))
            .isLessThanOrEqualTo(Math.max(Math.abs(x[i]) / 16f, s8 * 0x1p-10f) * 1.01f);
      }
    }
    byte[] z = new byte[4];
    assertThat(KvKernels.quantizeInt8(new float[4], 0, 4, MemorySegment.ofArray(z), 0)).isZero();
    assertThat(KvKernels.quantizeFp8(new float[4], 0, 4, MemorySegment.ofArray(z), 0)).isZero();
  }
}
