package io.kvant.engine.kv;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The scalings of {@link KvEncoding} other than plain per-token ({@code TOKEN_MSE}, {@code
 * BLOCK_CHANNEL}, {@code STATIC_CHANNEL}): each encoder against a scalar reference written from the
 * javadoc on random inputs, and the paged store's decode equal to that reference.
 */
class KvScalingTest {
  private static final KvCacheType[] TYPES = {KvCacheType.INT8, KvCacheType.FP8_E4M3};

  // ------------------------------------------------------------ the reference, from the javadoc

  private static float max(KvCacheType type) {
    return type == KvCacheType.INT8 ? 127f : 448f;
  }

  /** {@code value(code(y, s))}: the decoded code, as a number of code units. */
  private static double codeValue(KvCacheType type, float y, float s) {
    if (s == 0f) {
      return 0;
    }
    float z = y / s;
    if (type == KvCacheType.INT8) {
      return Math.max(-127, Math.min(127, (long) Math.floor((double) z + 0.5)));
    }
    return e4m3(z);
  }

  /** Round to nearest even among the finite E4M3 values (saturating at 448), by search. */
  static double e4m3(double x) {
    double best = 0;
    double bestErr = Double.MAX_VALUE;
    int bestMan = 0;
    for (int e = 0; e < 16; e++) {
      for (int m = 0; m < 8; m++) {
        if (e == 15 && m == 7) {
          continue; // NaN
        }
        double mag = e == 0 ? m / 8.0 * Math.pow(2, -6) : (1 + m / 8.0) * Math.pow(2, e - 7);
        double err = Math.abs(Math.abs(x) - mag);
        if (err < bestErr || (err == bestErr && m % 2 == 0 && bestMan % 2 == 1)) {
          best = mag;
          bestErr = err;
          bestMan = m;
        }
      }
    }
    return Math.copySign(best, x);
  }

  /** TOKEN_MSE: {scale, value_0, ..., value_{n-1}}. */
  private static double[] mseRef(KvCacheType type, float[] x) {
    float amax = 0f;
    for (float v : x) {
      amax = Math.max(amax, Math.abs(v));
    }
    double[] out = new double[x.length + 1];
    if (amax == 0f) {
      return out;
    }
    float s0 = amax / max(type);
    float best = 0f;
    float bestErr = Float.POSITIVE_INFINITY;
    for (int k = 0; k < 32; k++) {
      float s = s0 * (float) Math.pow(2, k / 32.0);
      float err = 0f;
      for (float v : x) {
        float d = v - s * (float) codeValue(type, v, s);
        err += d * d;
      }
      if (err < bestErr) {
        bestErr = err;
        best = s;
      }
    }
    out[0] = best;
    for (int i = 0; i < x.length; i++) {
      out[i + 1] = codeValue(type, x[i], best);
    }
    return out;
  }

  /** BLOCK_CHANNEL for one block: the channel scales and code values after writing {@code xs}. */
  private static final class BlockRef {
    final KvCacheType type;
    final float[] scale;
    final double[][] values;

    BlockRef(KvCacheType type, int n, int slots) {
      this.type = type;
      this.scale = new float[n];
      this.values = new double[slots][n];
    }

    void write(int slot, float[] x) {
      float m = max(type);
      for (int c = 0; c < x.length; c++) {
        float a = Math.abs(x[c]);
        if (slot == 0) {
          scale[c] = a / m;
        } else if (a > scale[c] * m) {
          float grown = a / m;
          if (scale[c] > 0f) {
            float r = scale[c] / grown;
            for (int u = 0; u < slot; u++) {
              float p = (float) values[u][c] * r;
              values[u][c] =
                  type == KvCacheType.INT8 ? (long) Math.floor((double) p + 0.5) : e4m3(p);
            }
          }
          scale[c] = grown;
        }
        values[slot][c] = codeValue(type, x[c], scale[c]);
      }
    }
  }

  private static float[] randomVector(SplittableRandom r, int n, double outlier) {
    float[] x = new float[n];
    for (int i = 0; i < n; i++) {
      x[i] = (float) (r.nextGaussian() * (i == n / 3 ? outlier : 1));
    }
    if (r.nextInt(10) == 0) {
      x[r.nextInt(n)] = 0f;
    }
    return x;
  }

  // ------------------------------------------------------------ encoders against the reference

  @Test
  void mseEncoderIsTheReference() {
    SplittableRandom r = new SplittableRandom(21);
    for (KvCacheType type : TYPES) {
      for (int trial = 0; trial < 400; trial++) {
        int n = 1 + r.nextInt(70);
        float[] x = randomVector(r, n, r.nextInt(3) == 0 ? 30 : 1);
        if (trial == 0) {
          x = new float[n]; // all zero: scale 0, codes 0
        }
        byte[] codes = new byte[n + 2];
        float s = MseScale.quantize(type, x, 0, n, MemorySegment.ofArray(codes), 2);
        double[] ref = mseRef(type, x);
        assertThat((double) s).isEqualTo(ref[0]);
        for (int i = 0; i < n; i++) {
          assertThat((double) KvKernels.value(type, codes[2 + i])).isEqualTo(ref[i + 1]);
        }
      }
    }
  }

  @Test
  void mseScaleIsNeverWorseThanAbsmax() {
    SplittableRandom r = new SplittableRandom(22);
    for (KvCacheType type : TYPES) {
      double mse = 0;
      double absmax = 0;
      for (int trial = 0; trial < 300; trial++) {
        float[] x = randomVector(r, 8, 10);
        byte[] a = new byte[8];
        byte[] b = new byte[8];
        float sa = MseScale.quantize(type, x, 0, 8, MemorySegment.ofArray(a), 0);
        float sb = KvKernels.quantize(type, x, 0, 8, MemorySegment.ofArray(b), 0);
        double ea = 0;
        double eb = 0;
        for (int i = 0; i < 8; i++) {
          ea += Math.pow(x[i] - sa * KvKernels.value(type, a[i]), 2);
          eb += Math.pow(x[i] - sb * KvKernels.value(type, b[i]), 2);
        }
        assertThat(ea).isLessThanOrEqualTo(eb * (1 + 1e-5) + 1e-12);
        mse += ea;
        absmax += eb;
      }
      assertThat(mse).isLessThan(absmax); // and better on the whole
    }
  }

  @Test
  void blockChannelEncoderIsTheReferenceAsTokensArrive() {
    SplittableRandom r = new SplittableRandom(23);
    for (KvCacheType type : TYPES) {
      for (int trial = 0; trial < 60; trial++) {
        int n = 1 + r.nextInt(40);
        int slots = 1 + r.nextInt(16);
        float[] scales = new float[n + 1];
        byte[] codes = new byte[slots * n + 3];
        BlockRef ref = new BlockRef(type, n, slots);
        for (int t = 0; t < slots; t++) {
          // growing magnitudes, so channels re-scale often
          float[] x = randomVector(r, n, 1 + t);
          ChannelCodes.appendBlockChannel(
              type, x, 0, n, scales, 1, MemorySegment.ofArray(codes), 3, t);
          ref.write(t, x);
          for (int c = 0; c < n; c++) {
            assertThat(scales[1 + c]).isEqualTo(ref.scale[c]);
            for (int u = 0; u <= t; u++) {
              assertThat((double) KvKernels.value(type, codes[3 + u * n + c]))
                  .as("type %s slot %d of %d, channel %d", type, u, t, c)
                  .isEqualTo(ref.values[u][c]);
            }
          }
        }
      }
    }
  }

  @Test
  void blockChannelInt8ErrorIsAtMostOneStepAfterReScaling() {
    SplittableRandom r = new SplittableRandom(24);
    int n = 16;
    float[] scales = new float[n];
    byte[] codes = new byte[16 * n];
    float[][] xs = new float[16][];
    for (int t = 0; t < 16; t++) {
      xs[t] = randomVector(r, n, 1 + 2 * t);
      ChannelCodes.appendBlockChannel(
          KvCacheType.INT8, xs[t], 0, n, scales, 0, MemorySegment.ofArray(codes), 0, t);
    }
    for (int t = 0; t < 16; t++) {
      for (int c = 0; c < n; c++) {
        double err = Math.abs(xs[t][c] - scales[c] * codes[t * n + c]);
        assertThat(err).isLessThanOrEqualTo(scales[c] * 1.0001);
      }
    }
  }

  @Test
  void staticEncoderClipsAtTheCalibratedRange() {
    SplittableRandom r = new SplittableRandom(25);
    for (KvCacheType type : TYPES) {
      int n = 24;
      float[] scales = new float[n];
      for (int c = 0; c < n; c++) {
        scales[c] = c == 5 ? 0f : (float) (r.nextDouble() * 0.05);
      }
      for (int trial = 0; trial < 50; trial++) {
        float[] x = randomVector(r, n, 20);
        byte[] codes = new byte[n];
        ChannelCodes.encodeStatic(type, x, 0, n, scales, 0, MemorySegment.ofArray(codes), 0);
        for (int c = 0; c < n; c++) {
          double want = codeValue(type, x[c], scales[c]);
          assertThat((double) KvKernels.value(type, codes[c])).isEqualTo(want);
          assertThat(Math.abs(want)).isLessThanOrEqualTo(max(type));
        }
      }
    }
  }

  // ------------------------------------------------------------ the store decodes the reference

  private static KvCacheManager manager(
      KvGeometry g, KvCacheType type, KvEncoding encoding, KvScales scales) {
    return new KvCacheManager(
        g,
        new KvCacheConfig(type, 16, 8L * 16 * g.bytesPerToken(type), EvictionPolicyKind.LRU, false),
        KvStoreFactory.host(encoding, scales));
  }

  /** key[t][c] as the store decodes it: the score of the basis query e_c. */
  private static float decodedKey(KvStore s, int seq, int layer, int head, int c, int len, int t) {
    float[] q = new float[s.headSize()];
    q[c] = 1f;
    float[] scores = new float[len];
    s.keyScores(seq, layer, head, q, 0, len, scores);
    return scores[t];
  }

  /** value[t][c] as the store decodes it: the weighted sum with weight 1 at t. */
  private static float decodedValue(
      KvStore s, int seq, int layer, int head, int c, int len, int t) {
    float[] w = new float[len];
    w[t] = 1f;
    float[] out = new float[s.headSize()];
    s.addWeightedValues(seq, layer, head, w, len, out, 0);
    return out[c];
  }

  @Test
  void storeDecodesKiviKeysAndMseValuesAsTheReference() {
    SplittableRandom r = new SplittableRandom(26);
    KvGeometry g = new KvGeometry(2, 2, 8);
    int len = 37; // two full blocks and a partial one
    for (KvCacheType type : TYPES) {
      KvCacheManager kv = manager(g, type, KvEncoding.KIVI_MSE, null);
      int seq = kv.open(kv.findCachedPrefix(new int[] {1}, 1, "v"), len);
      float[][][] k = new float[2][len][];
      float[][][] v = new float[2][len][];
      BlockRef[][] blocks = new BlockRef[2][2 * 3];
      for (int pos = 0; pos < len; pos++) {
        for (int l = 0; l < 2; l++) {
          k[l][pos] = randomVector(r, g.kvDim(), 1 + pos % 16);
          v[l][pos] = randomVector(r, g.kvDim(), 5);
          kv.store().write(seq, l, pos, k[l][pos], 0, v[l][pos], 0);
          for (int h = 0; h < 2; h++) {
            int b = (pos / 16) * 2 + h;
            if (blocks[l][b] == null) {
              blocks[l][b] = new BlockRef(type, 8, 16);
            }
            blocks[l][b].write(pos % 16, java.util.Arrays.copyOfRange(k[l][pos], h * 8, h * 8 + 8));
          }
        }
      }
      for (int l = 0; l < 2; l++) {
        for (int h = 0; h < 2; h++) {
          for (int t = 0; t < len; t += 3) {
            BlockRef b = blocks[l][(t / 16) * 2 + h];
            double[] vr = mseRef(type, java.util.Arrays.copyOfRange(v[l][t], h * 8, h * 8 + 8));
            for (int c = 0; c < 8; c++) {
              assertThat(decodedKey(kv.store(), seq, l, h, c, len, t))
                  .isEqualTo((float) (b.scale[c] * b.values[t % 16][c]));
              assertThat(decodedValue(kv.store(), seq, l, h, c, len, t))
                  .isEqualTo((float) (vr[0] * vr[c + 1]));
            }
          }
        }
      }
      kv.free(seq);
    }
  }

  @Test
  void storeDecodesStaticScalesAsTheReference() {
    SplittableRandom r = new SplittableRandom(27);
    KvGeometry g = new KvGeometry(2, 3, 8);
    float[] ka = new float[2 * g.kvDim()];
    float[] va = new float[2 * g.kvDim()];
    for (int i = 0; i < ka.length; i++) {
      ka[i] = (float) (0.5 + 3 * r.nextDouble());
      va[i] = (float) (0.5 + 2 * r.nextDouble());
    }
    KvScales scales = new KvScales(g, false, ka, va);
    int len = 21;
    for (KvCacheType type : TYPES) {
      KvCacheManager kv = manager(g, type, KvEncoding.STATIC, scales);
      int seq = kv.open(kv.findCachedPrefix(new int[] {1}, 1, "v"), len);
      float[][][] k = new float[2][len][];
      float[][][] v = new float[2][len][];
      for (int pos = 0; pos < len; pos++) {
        for (int l = 0; l < 2; l++) {
          k[l][pos] = randomVector(r, g.kvDim(), 4); // some beyond the range: clipped
          v[l][pos] = randomVector(r, g.kvDim(), 1);
          kv.store().write(seq, l, pos, k[l][pos], 0, v[l][pos], 0);
        }
      }
      float m = max(type);
      for (int l = 0; l < 2; l++) {
        for (int h = 0; h < 3; h++) {
          for (int t = 0; t < len; t += 4) {
            for (int c = 0; c < 8; c++) {
              int i = (l * 3 + h) * 8 + c;
              float ks = ka[i] / m;
              float vs = va[i] / m;
              assertThat(decodedKey(kv.store(), seq, l, h, c, len, t))
                  .isEqualTo((float) (ks * codeValue(type, k[l][t][h * 8 + c], ks)));
              assertThat(decodedValue(kv.store(), seq, l, h, c, len, t))
                  .isEqualTo((float) (vs * codeValue(type, v[l][t][h * 8 + c], vs)));
            }
          }
        }
      }
      kv.free(seq);
    }
  }

  @Test
  void storeDecodesRotatedKiviAndStaticAsTheReferenceOfTheRotatedVectors() {
    SplittableRandom r = new SplittableRandom(28);
    KvGeometry g = new KvGeometry(1, 1, 8);
    int len = 20;
    float[] ka = new float[8];
    float[] va = new float[8];
    java.util.Arrays.fill(ka, 6f);
    java.util.Arrays.fill(va, 3f);
    KvScales rotatedScales = new KvScales(g, true, ka, va);
    for (KvCacheType type : TYPES) {
      for (KvEncoding e : new KvEncoding[] {KvEncoding.KIVI_HADAMARD, KvEncoding.STATIC_HADAMARD}) {
        KvCacheManager kv = manager(g, type, e, e.needsScales() ? rotatedScales : null);
        int seq = kv.open(kv.findCachedPrefix(new int[] {1}, 1, "v"), len);
        BlockRef[] blocks = {new BlockRef(type, 8, 16), new BlockRef(type, 8, 16)};
        double[][] keyRef = new double[len][8]; // decoded, in the rotated basis
        double[][] valueRef = new double[len][8];
        for (int pos = 0; pos < len; pos++) {
          float[] k = randomVector(r, 8, 6);
          float[] v = randomVector(r, 8, 1);
          kv.store().write(seq, 0, pos, k, 0, v, 0);
          float[] ky = k.clone();
          float[] vy = v.clone();
          KvEncoding.rotate(ky, 0, 8);
          KvEncoding.rotate(vy, 0, 8);
          float m = max(type);
          if (e == KvEncoding.KIVI_HADAMARD) {
            blocks[pos / 16].write(pos % 16, ky);
            double[] vr = perTokenRef(type, vy);
            for (int c = 0; c < 8; c++) {
              valueRef[pos][c] = vr[0] * vr[c + 1];
            }
          } else {
            for (int c = 0; c < 8; c++) {
              keyRef[pos][c] = (ka[c] / m) * codeValue(type, ky[c], ka[c] / m);
              valueRef[pos][c] = (va[c] / m) * codeValue(type, vy[c], va[c] / m);
            }
          }
        }
        if (e == KvEncoding.KIVI_HADAMARD) {
          for (int pos = 0; pos < len; pos++) {
            BlockRef b = blocks[pos / 16];
            for (int c = 0; c < 8; c++) {
              keyRef[pos][c] = b.scale[c] * b.values[pos % 16][c];
            }
          }
        }
        for (int t = 0; t < len; t++) {
          for (int j = 0; j < 8; j++) {
            double wantK = 0; // e_j . x = (H e_j / sqrt n) . y
            double wantV = 0;
            for (int i = 0; i < 8; i++) {
              double h = (Integer.bitCount(i & j) % 2 == 0 ? 1 : -1) / Math.sqrt(8);
              wantK += h * keyRef[t][i];
              wantV += h * valueRef[t][i];
            }
            assertThat((double) decodedKey(kv.store(), seq, 0, 0, j, len, t))
                .as("%s %s key %d.%d", type, e, t, j)
                .isCloseTo(
                    wantK, org.assertj.core.data.Offset.offset(1e-4 * (1 + Math.abs(wantK))));
            assertThat((double) decodedValue(kv.store(), seq, 0, 0, j, len, t))
                .as("%s %s value %d.%d", type, e, t, j)
                .isCloseTo(
                    wantV, org.assertj.core.data.Offset.offset(1e-4 * (1 + Math.abs(wantV))));
          }
        }
        kv.free(seq);
      }
    }
  }

  /** TOKEN: {scale, value_0, ..., value_{n-1}} by PER_TOKEN's multiply-by-inverse rule. */
  private static double[] perTokenRef(KvCacheType type, float[] x) {
    float amax = 0f;
    for (float v : x) {
      amax = Math.max(amax, Math.abs(v));
    }
    double[] out = new double[x.length + 1];
    if (amax == 0f) {
      return out;
    }
    float m = max(type);
    float inv = m / amax;
    out[0] = amax / m;
    for (int i = 0; i < x.length; i++) {
      float z = x[i] * inv;
      out[i + 1] =
          type == KvCacheType.INT8
              ? Math.max(-127, Math.min(127, (long) Math.floor((double) z + 0.5)))
              : e4m3(z);
    }
    return out;
  }

  @Test
  void recorderMeasuresChannelMaximaRotatedOrNot() {
    KvGeometry g = new KvGeometry(1, 1, 4);
    ContiguousKvStore f32 = new ContiguousKvStore(1, 1, 4, 4, 1);
    KvScaleRecorder plain = new KvScaleRecorder(f32, 1, false);
    KvScaleRecorder rotated = new KvScaleRecorder(f32, 1, true);
    float[] k1 = {1f, -3f, 0f, 0.5f};
    float[] k2 = {-2f, 1f, 0f, 0f};
    float[] v = {0f, 0f, 4f, 0f};
    for (KvScaleRecorder rec : new KvScaleRecorder[] {plain, rotated}) {
      rec.write(0, 0, 0, k1, 0, v, 0);
      rec.write(0, 0, 1, k2, 0, v, 0);
    }
    assertThat(plain.scales().keyAmax()).containsExactly(2f, 3f, 0f, 0.5f);
    assertThat(plain.scales().valueAmax()).containsExactly(0f, 0f, 4f, 0f);
    // H x / 2 of v = (4, -4, 4, ... ) / 2 by sign pattern: every entry has magnitude 2
    assertThat(rotated.scales().valueAmax()).containsExactly(2f, 2f, 2f, 2f);
    assertThat(rotated.scales().rotated()).isTrue();
    assertThat(rotated.scales().geometry()).isEqualTo(g);
    // it passes everything on
    float[] scores = new float[2];
    plain.keyScores(0, 0, 0, new float[] {1f, 0f, 0f, 0f}, 0, 2, scores);
    assertThat(scores).containsExactly(1f, -2f);
  }

  @Test
  void storeRefusesMissingOrMismatchedScales() {
    KvGeometry g = new KvGeometry(1, 1, 8);
    KvScales other = new KvScales(new KvGeometry(1, 2, 8), false, new float[16], new float[16]);
    KvScales rotated = new KvScales(g, true, new float[8], new float[8]);
    assertThatThrownBy(() -> manager(g, KvCacheType.INT8, KvEncoding.STATIC, null))
        .hasMessageContaining("static")
        .hasMessageContaining("calibrated KV scales");
    assertThatThrownBy(() -> manager(g, KvCacheType.INT8, KvEncoding.STATIC, other))
        .hasMessageContaining("the KV scales are for");
    assertThatThrownBy(() -> manager(g, KvCacheType.INT8, KvEncoding.STATIC, rotated))
        .hasMessageContaining("calibrated rotated");
    assertThatThrownBy(() -> manager(g, KvCacheType.F32, KvEncoding.KIVI, null))
        .hasMessageContaining("kivi")
        .hasMessageContaining("not f32");
    assertThatThrownBy(() -> new KvScales(g, false, new float[7], new float[8]))
        .hasMessageContaining("key_amax");
    float[] nan = new float[8];
    nan[3] = Float.NaN;
    assertThatThrownBy(() -> new KvScales(g, false, new float[8], nan))
        .hasMessageContaining("value_amax[3]");
  }

  @Test
  void theBudgetCountsTheScalesEachEncodingKeeps() {
    for (int hs : new int[] {8, 32}) {
      KvGeometry g = new KvGeometry(2, 2, hs);
      long codes = 2L * 2 * 2 * 16 * hs;
      long tokenScales = 2L * 2 * 16 * 4;
      assertThat(PagedKvStore.bytesPerBlock(g, KvCacheType.INT8, KvEncoding.PER_TOKEN, 16))
          .isEqualTo(codes + 2 * tokenScales)
          .isEqualTo(16 * g.bytesPerToken(KvCacheType.INT8));
      assertThat(PagedKvStore.bytesPerBlock(g, KvCacheType.FP8_E4M3, KvEncoding.KIVI_MSE, 16))
          .isEqualTo(codes + tokenScales + 2L * 2 * hs * 4);
      assertThat(PagedKvStore.bytesPerBlock(g, KvCacheType.INT8, KvEncoding.STATIC, 16))
          .isEqualTo(codes);
      long budget = 100 * PagedKvStore.bytesPerBlock(g, KvCacheType.INT8, KvEncoding.KIVI, 16);
      KvCacheConfig c =
          new KvCacheConfig(KvCacheType.INT8, 16, budget, EvictionPolicyKind.LRU, false);
      KvCacheManager kivi = new KvCacheManager(g, c, KvStoreFactory.host(KvEncoding.KIVI));
      assertThat(kivi.totalBlocks()).isEqualTo(100);
      KvCacheManager perToken = new KvCacheManager(g, c, KvStoreFactory.host());
      assertThat(perToken.totalBlocks()).isEqualTo((int) (budget / (codes + 2 * tokenScales)));
      // 32-wide heads: a block's 32 channel scales outweigh its 16 token scales, and vice versa
      assertThat(perToken.totalBlocks() > 100).isEqualTo(hs > 16);
    }
  }

  @Test
  void everyEncodingParsesByItsOptionName() {
    for (KvEncoding e : KvEncoding.values()) {
      assertThat(KvEncoding.parse(" " + e.optionName().toUpperCase() + " ")).isEqualTo(e);
    }
    assertThatThrownBy(() -> KvEncoding.parse("kivvi"))
        .hasMessageContaining("kivvi")
        .hasMessageContaining("per-token, hadamard");
  }
}
