package io.kvant.engine.kv;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kvant.engine.forward.RopeTable;
import io.kvant.engine.model.RopeStyle;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The centered encodings ({@link KvEncoding#CENTERED_MSE}, {@link KvEncoding#CENTERED_QMSE}): that
 * centering is exact in attention (only the centered residual is rounded), that it cuts the error
 * of keys with an offset, the calibration of their moments, and the refusal of bad statistics.
 */
class KvCenteringTest {
  private static final KvEncoding[] CENTERED = {KvEncoding.CENTERED_MSE, KvEncoding.CENTERED_QMSE};
  private static final KeyRope ROPE = new KeyRope(10000, RopeStyle.ADJACENT_PAIRS);

  private static KvCacheManager manager(
      KvGeometry g, KvCacheType type, KvEncoding encoding, KvScales scales) {
    return new KvCacheManager(
        g,
        new KvCacheConfig(type, 16, 8L * 16 * g.bytesPerToken(type), EvictionPolicyKind.LRU, false),
        KvStoreFactory.host(encoding, scales));
  }

  /** Scales with the given key means and query moments (maxima unused by these encodings). */
  private static KvScales moments(KvGeometry g, KeyRope rope, float[] mean, float[] moment) {
    int n = g.layers() * g.kvDim();
    return new KvScales(g, false, new float[n], new float[n], rope, mean, moment);
  }

  private static float[] identityMoments(KvGeometry g) {
    int hs = g.headSize();
    float[] w = new float[g.layers() * g.kvDim() * hs];
    for (int h = 0; h < g.layers() * g.kvHeads(); h++) {
      for (int i = 0; i < hs; i++) {
        w[(h * hs + i) * hs + i] = 1f;
      }
    }
    return w;
  }

  // ------------------------------------------------------------ RoPE as the forward pass has it

  @Test
  void theRopeTablesAreTheForwardPasssBitForBit() {
    for (RopeStyle style : RopeStyle.values()) {
      for (int hs : new int[] {8, 64}) {
        RopeTable forward = new RopeTable(hs, 300, 10000, style);
        float[][] t = new KeyRope.Tables(new KeyRope(10000, style), hs).upTo(299);
        float[] cos = forward.cosines();
        float[] sin = forward.sines();
        for (int i = 0; i < cos.length; i++) {
          assertThat(t[0][i]).isEqualTo(cos[i]);
          assertThat(t[1][i]).isEqualTo(sin[i]);
        }
      }
    }
  }

  @Test
  void theInverseRotationUndoesTheRotationAndOffsetScoresAreDotProductsWithTheRotatedMean() {
    SplittableRandom r = new SplittableRandom(1);
    for (RopeStyle style : RopeStyle.values()) {
      KeyRope.Tables t = new KeyRope.Tables(new KeyRope(500, style), 16);
      float[] m = random(r, 16, 3);
      float[] q = random(r, 16, 1);
      int len = 70;
      float[] scores = new float[len];
      java.util.Arrays.fill(scores, 1f);
      t.addOffsetScores(q, 0, m, 0, len, scores);
      for (int pos = 0; pos < len; pos++) {
        float[] rm = new float[16];
        t.rotate(m, 0, pos, false, rm, 0);
        float[] back = new float[16];
        t.rotate(rm, 0, pos, true, back, 0);
        double dot = 0;
        for (int i = 0; i < 16; i++) {
          assertThat(back[i]).isCloseTo(m[i], org.assertj.core.api.Assertions.within(1e-5f));
          dot += (double) q[i] * rm[i];
        }
        assertThat((double) scores[pos])
            .isCloseTo(1 + dot, org.assertj.core.api.Assertions.within(1e-4));
      }
    }
  }

  // ------------------------------------------------------------ exactness

  /**
   * Keys {@code R(t) m + y_t} with {@code y_t} on the E4M3 grid at scale 1 (one element of each
   * head vector at ±448): centering leaves exactly {@code y_t} to encode up to F32 rounding, which
   * the codes hold, so the store's scores and its attention output equal those of F32 keys and
   * values up to F32 rounding. Without centering (per-token-mse) the same keys are off the grid.
   */
  @Test
  void centeringIsExactInAttention() {
    SplittableRandom r = new SplittableRandom(2);
    KvGeometry g = new KvGeometry(2, 2, 8);
    int len = 37;
    float[] mean = random(r, g.layers() * g.kvDim(), 300); // offsets larger than the spread
    KeyRope.Tables rope = new KeyRope.Tables(ROPE, g.headSize());
    for (KvEncoding e : CENTERED) {
      KvScales scales = moments(g, ROPE, mean, identityMoments(g));
      double worstCentered = 0;
      double worstPlain = 0;
      KvCacheManager centered = manager(g, KvCacheType.FP8_E4M3, e, scales);
      KvCacheManager plain = manager(g, KvCacheType.FP8_E4M3, KvEncoding.PER_TOKEN_MSE, null);
      ContiguousKvStore ref = new ContiguousKvStore(g.layers(), g.kvHeads(), g.headSize(), len, 1);
      int cs = centered.open(centered.findCachedPrefix(new int[] {1}, 1, "v"), len);
      int ps = plain.open(plain.findCachedPrefix(new int[] {1}, 1, "v"), len);
      for (int pos = 0; pos < len; pos++) {
        for (int l = 0; l < g.layers(); l++) {
          float[] k = new float[g.kvDim()];
          float[] v = new float[g.kvDim()];
          for (int h = 0; h < g.kvHeads(); h++) {
            float[] y = onGrid(r, g.headSize());
            float[] rm = new float[g.headSize()];
            rope.rotate(mean, (l * g.kvHeads() + h) * g.headSize(), pos, false, rm, 0);
            float[] vv = onGrid(r, g.headSize());
            for (int c = 0; c < g.headSize(); c++) {
              k[h * g.headSize() + c] = rm[c] + y[c];
              v[h * g.headSize() + c] = vv[c];
            }
          }
          centered.store().write(cs, l, pos, k, 0, v, 0);
          plain.store().write(ps, l, pos, k, 0, v, 0);
          ref.write(0, l, pos, k, 0, v, 0);
        }
      }
      for (int l = 0; l < g.layers(); l++) {
        for (int h = 0; h < g.kvHeads(); h++) {
          float[] q = random(r, g.headSize(), 0.01);
          float[] a = attend(centered.store(), cs, l, h, q, len);
          float[] b = attend(ref, 0, l, h, q, len);
          float[] c = attend(plain.store(), ps, l, h, q, len);
          for (int i = 0; i < a.length; i++) {
            // scores first, then the outputs (values of magnitude up to 448)
            double scale = i < len ? 10 : 448;
            worstCentered = Math.max(worstCentered, Math.abs(a[i] - b[i]) / scale);
            worstPlain = Math.max(worstPlain, Math.abs(c[i] - b[i]) / scale);
          }
        }
      }
      assertThat(worstCentered).as(e.optionName()).isLessThan(2e-5);
      assertThat(worstPlain).as("per-token-mse of the same keys").isGreaterThan(1e-3);
    }
  }

  /** Scores of {@code q} (length {@code len}), then the softmax-weighted values (head size). */
  private static float[] attend(KvStore s, int seq, int layer, int head, float[] q, int len) {
    float[] scores = new float[len];
    s.keyScores(seq, layer, head, q, 0, len, scores);
    float[] out = new float[len + s.headSize()];
    System.arraycopy(scores, 0, out, 0, len);
    float max = Float.NEGATIVE_INFINITY;
    for (float x : scores) {
      max = Math.max(max, x);
    }
    float sum = 0f;
    float[] w = new float[len];
    for (int t = 0; t < len; t++) {
      w[t] = (float) Math.exp(scores[t] - max);
      sum += w[t];
    }
    for (int t = 0; t < len; t++) {
      w[t] /= sum;
    }
    s.addWeightedValues(seq, layer, head, w, len, out, len);
    return out;
  }

  /** E4M3 values (scale 1), one of them ±448 so that 448 is the vector's maximum. */
  private static float[] onGrid(SplittableRandom r, int n) {
    float[] grid = {0f, 0.5f, 1f, 1.5f, 2f, 3f, 7f, 12f, 52f, 96f, 240f, 448f};
    float[] y = new float[n];
    for (int i = 0; i < n; i++) {
      y[i] = grid[r.nextInt(grid.length - 1)] * (r.nextBoolean() ? 1 : -1);
    }
    y[r.nextInt(n)] = r.nextBoolean() ? 448f : -448f;
    return y;
  }

  // ------------------------------------------------------------ calibration and the error

  @Test
  void theRecorderMeasuresKeyMeansBeforeRopeAndQueryMoments() {
    SplittableRandom r = new SplittableRandom(3);
    KvGeometry g = new KvGeometry(1, 2, 8);
    float[] mean = random(r, g.kvDim(), 5);
    KeyRope.Tables rope = new KeyRope.Tables(ROPE, 8);
    int len = 40;
    KvScaleRecorder rec =
        new KvScaleRecorder(new ContiguousKvStore(1, 2, 8, len, 1), 1, false, ROPE);
    for (int pos = 0; pos < len; pos++) {
      float[] k = new float[g.kvDim()];
      for (int h = 0; h < 2; h++) {
        rope.rotate(mean, h * 8, pos, false, k, h * 8);
      }
      rec.write(0, 0, pos, k, 0, new float[g.kvDim()], 0);
    }
    float[][] qs = {random(r, 8, 1), random(r, 8, 2), random(r, 8, 1)};
    float[] scores = new float[len];
    for (float[] q : qs) {
      rec.keyScores(0, 0, 1, q, 0, len, scores);
    }
    KvScales s = rec.scales();
    assertThat(s.hasKeyMoments()).isTrue();
    assertThat(s.keyRope()).isEqualTo(ROPE);
    float[] m = s.keyMean();
    for (int i = 0; i < m.length; i++) {
      assertThat(m[i]).isCloseTo(mean[i], org.assertj.core.api.Assertions.within(1e-4f));
    }
    float[] w = s.queryMoment();
    for (int i = 0; i < 8; i++) {
      for (int j = 0; j < 8; j++) {
        double e = 0;
        for (float[] q : qs) {
          e += (double) q[i] * q[j] / qs.length;
        }
        assertThat(w[i * 8 + j]).as("head 0 was never read").isZero();
        assertThat((double) w[64 + i * 8 + j])
            .isCloseTo(e, org.assertj.core.api.Assertions.within(1e-5));
      }
    }
    assertThat(
            new KvScaleRecorder(new ContiguousKvStore(1, 2, 8, 4, 1), 1, false)
                .scales()
                .hasKeyMoments())
        .isFalse();
  }

  /**
   * Keys with a large offset before RoPE and anisotropic queries, calibrated through the recorder:
   * centering cuts the mean squared score error of FP8 keys several times, and weighing the scale
   * by the queries cuts it further.
   */
  @Test
  void centeringCutsTheScoreErrorOfKeysWithAnOffset() {
    KvGeometry g = new KvGeometry(1, 1, 8);
    float[] mean = {9, -4, 14, 2, -7, 6, 1, -11};
    float[] qScale = {3, 0.2f, 2, 0.3f, 0.1f, 2.5f, 0.5f, 0.1f};
    int len = 120; // the manager holds 8 blocks of 16
    KvScaleRecorder rec =
        new KvScaleRecorder(new ContiguousKvStore(1, 1, 8, len, 1), 1, false, ROPE);
    fill(rec, new SplittableRandom(4), mean, len);
    SplittableRandom qr = new SplittableRandom(5);
    float[] scratch = new float[len];
    for (int i = 0; i < 200; i++) {
      rec.keyScores(0, 0, 0, query(qr, qScale), 0, len, scratch);
    }
    KvScales scales = rec.scales();
    double[] err = new double[3];
    KvEncoding[] encodings = {
      KvEncoding.PER_TOKEN_MSE, KvEncoding.CENTERED_MSE, KvEncoding.CENTERED_QMSE
    };
    for (int e = 0; e < 3; e++) {
      KvCacheManager kv = manager(g, KvCacheType.FP8_E4M3, encodings[e], e == 0 ? null : scales);
      ContiguousKvStore ref = new ContiguousKvStore(1, 1, 8, len, 1);
      int seq = kv.open(kv.findCachedPrefix(new int[] {1}, 1, "v"), len);
      KvStore both = new Tee(kv.store(), seq, ref);
      fill(both, new SplittableRandom(6), mean, len); // other keys than calibrated on
      SplittableRandom q2 = new SplittableRandom(7);
      float[] a = new float[len];
      float[] b = new float[len];
      for (int i = 0; i < 300; i++) {
        float[] q = query(q2, qScale);
        kv.store().keyScores(seq, 0, 0, q, 0, len, a);
        ref.keyScores(0, 0, 0, q, 0, len, b);
        for (int t = 0; t < len; t++) {
          err[e] += (a[t] - b[t]) * (double) (a[t] - b[t]);
        }
      }
    }
    assertThat(err[1]).as("centered-mse vs per-token-mse").isLessThan(err[0] / 4);
    assertThat(err[2]).as("centered-qmse vs centered-mse").isLessThan(err[1]);
  }

  private static float[] query(SplittableRandom r, float[] scale) {
    float[] q = new float[scale.length];
    for (int i = 0; i < q.length; i++) {
      q[i] = (float) (r.nextGaussian() * scale[i]);
    }
    return q;
  }

  /** Keys {@code R(t) (mean + noise)}, values noise, at positions {@code 0 .. len)}. */
  private static void fill(KvStore s, SplittableRandom r, float[] mean, int len) {
    KeyRope.Tables rope = new KeyRope.Tables(ROPE, mean.length);
    for (int pos = 0; pos < len; pos++) {
      float[] pre = new float[mean.length];
      for (int i = 0; i < pre.length; i++) {
        pre[i] = mean[i] + (float) r.nextGaussian();
      }
      float[] k = new float[mean.length];
      rope.rotate(pre, 0, pos, false, k, 0);
      s.write(0, 0, pos, k, 0, random(r, mean.length, 1), 0);
    }
  }

  /** Writes to a store's sequence and to a reference's sequence 0. */
  private record Tee(KvStore store, int seq, KvStore ref) implements KvStore {
    @Override
    public int kvHeads() {
      return store.kvHeads();
    }

    @Override
    public int headSize() {
      return store.headSize();
    }

    @Override
    public void write(int s, int layer, int pos, float[] k, int kOff, float[] v, int vOff) {
      store.write(seq, layer, pos, k, kOff, v, vOff);
      ref.write(0, layer, pos, k, kOff, v, vOff);
    }

    @Override
    public void keyScores(int s, int l, int h, float[] q, int qOff, int len, float[] scores) {
      throw new UnsupportedOperationException();
    }

    @Override
    public void addWeightedValues(
        int s, int l, int h, float[] w, int len, float[] out, int outOff) {
      throw new UnsupportedOperationException();
    }
  }

  // ------------------------------------------------------------ the weighted scale

  @Test
  void theWeightedScaleWithIdentityMomentsIsThePlainOneAndOtherwiseTheLeastWeightedError() {
    SplittableRandom r = new SplittableRandom(8);
    for (KvCacheType type : new KvCacheType[] {KvCacheType.INT8, KvCacheType.FP8_E4M3}) {
      for (int trial = 0; trial < 200; trial++) {
        int n = 8;
        float[] x = random(r, n, 1 + 5 * r.nextDouble());
        byte[] plain = new byte[n];
        byte[] weighted = new byte[n];
        float sp = MseScale.quantize(type, x, 0, n, MemorySegment.ofArray(plain), 0);
        float[] id = new float[n * n];
        for (int i = 0; i < n; i++) {
          id[i * n + i] = 1f;
        }
        float sw =
            MseScale.quantizeWeighted(type, x, 0, n, MemorySegment.ofArray(weighted), 0, id, 0);
        assertThat(sw).isEqualTo(sp);
        assertThat(weighted).containsExactly(plain);
        // a random second moment: the chosen candidate has the least error of all 32
        float[] a = random(r, n * n, 1);
        float[] w = new float[n * n];
        for (int i = 0; i < n; i++) {
          for (int j = 0; j < n; j++) {
            for (int k = 0; k < n; k++) {
              w[i * n + j] += a[i * n + k] * a[j * n + k];
            }
          }
        }
        float s =
            MseScale.quantizeWeighted(type, x, 0, n, MemorySegment.ofArray(weighted), 0, w, 0);
        float amax = 0f;
        for (float v : x) {
          amax = Math.max(amax, Math.abs(v));
        }
        double chosen = weightedError(type, x, s, w);
        for (float f : MseScale.FACTORS) {
          float cand = amax / KvKernels.codeMax(type) * f;
          assertThat(chosen)
              .isLessThanOrEqualTo(weightedError(type, x, cand, w) * (1 + 1e-4) + 1e-9);
        }
        for (int i = 0; i < n; i++) {
          assertThat(weighted[i]).isEqualTo(KvKernels.code(type, x[i], s));
        }
      }
    }
  }

  private static double weightedError(KvCacheType type, float[] x, float s, float[] w) {
    int n = x.length;
    double[] d = new double[n];
    for (int i = 0; i < n; i++) {
      d[i] = x[i] - (double) s * KvKernels.value(type, KvKernels.code(type, x[i], s));
    }
    double err = 0;
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < n; j++) {
        err += d[i] * w[i * n + j] * d[j];
      }
    }
    return err;
  }

  // ------------------------------------------------------------ options and bad input

  @Test
  void theCenteredEncodingsParseNeedCalibrationAndCostWhatPerTokenMseCosts() {
    KvGeometry g = new KvGeometry(2, 2, 16);
    for (KvEncoding e : CENTERED) {
      assertThat(KvEncoding.parse(e.optionName())).isEqualTo(e);
      assertThat(e.needsScales()).isTrue();
      assertThat(e.centersKeys()).isTrue();
      assertThat(e.rotates()).isFalse();
      assertThat(PagedKvStore.bytesPerBlock(g, KvCacheType.FP8_E4M3, e, 16))
          .isEqualTo(
              PagedKvStore.bytesPerBlock(g, KvCacheType.FP8_E4M3, KvEncoding.PER_TOKEN_MSE, 16));
    }
    assertThat(KvEncoding.parse("centered-mse")).isEqualTo(KvEncoding.CENTERED_MSE);
    assertThat(KvEncoding.CENTERED_QMSE.weighsKeys()).isTrue();
    assertThat(KvEncoding.CENTERED_MSE.weighsKeys()).isFalse();
    assertThat(KvEncoding.cpuDefault(KvCacheType.FP8_E4M3)).isEqualTo(KvEncoding.PER_TOKEN_MSE);
  }

  @Test
  void badKeyMomentsAreRefusedNamingWhatIsWrong() {
    KvGeometry g = new KvGeometry(1, 1, 8);
    float[] amax = new float[8];
    float[] w = identityMoments(g);
    assertThatThrownBy(() -> new KvScales(g, false, amax, amax, ROPE, new float[7], w))
        .hasMessage("key_mean: 7 values, the geometry needs 8");
    assertThatThrownBy(() -> new KvScales(g, false, amax, amax, ROPE, new float[8], new float[8]))
        .hasMessage("query_moment: 8 values, the geometry needs 64");
    assertThatThrownBy(() -> new KvScales(g, false, amax, amax, ROPE, null, w))
        .hasMessage("key_mean: missing");
    assertThatThrownBy(() -> new KvScales(g, false, amax, amax, null, new float[8], w))
        .hasMessageContaining("need key_rope");
    assertThatThrownBy(() -> new KvScales(g, true, amax, amax, ROPE, new float[8], w))
        .hasMessageContaining("unrotated keys");
    float[] nan = new float[8];
    nan[2] = Float.NaN;
    assertThatThrownBy(() -> new KvScales(g, false, amax, amax, ROPE, nan, w))
        .hasMessageStartingWith("key_mean[2]: must be finite");
    float[] negative = identityMoments(g);
    negative[9] = -1f;
    assertThatThrownBy(() -> new KvScales(g, false, amax, amax, ROPE, new float[8], negative))
        .hasMessageStartingWith("query_moment[9]: a diagonal element must be >= 0");
    assertThatThrownBy(() -> new KeyRope(0, RopeStyle.HALF_SPLIT)).hasMessageContaining("theta");
    assertThatThrownBy(() -> new KeyRope(1e4, null)).hasMessageContaining("style");
    assertThatThrownBy(() -> new KeyRope.Tables(ROPE, 7)).hasMessageContaining("even head size");
    assertThatThrownBy(
            () -> new KvScaleRecorder(new ContiguousKvStore(1, 1, 8, 4, 1), 1, true, ROPE))
        .hasMessageContaining("unrotated");
  }

  @Test
  void theStoreRefusesMissingOrMismatchedKeyMoments() {
    KvGeometry g = new KvGeometry(1, 1, 8);
    KvScales maxima = new KvScales(g, false, new float[8], new float[8]);
    KvGeometry other = new KvGeometry(1, 2, 8);
    KvScales otherShape = moments(other, ROPE, new float[16], identityMoments(other));
    for (KvEncoding e : CENTERED) {
      assertThatThrownBy(() -> manager(g, KvCacheType.FP8_E4M3, e, null))
          .hasMessageContaining(e.optionName())
          .hasMessageContaining("calibrated KV scales");
      assertThatThrownBy(() -> manager(g, KvCacheType.FP8_E4M3, e, maxima))
          .hasMessageContaining(e.optionName() + " needs calibrated key means");
      assertThatThrownBy(() -> manager(g, KvCacheType.INT8, e, otherShape))
          .hasMessageContaining("the KV scales are for");
      assertThatThrownBy(() -> manager(g, KvCacheType.F32, e, maxima))
          .hasMessageContaining("not f32");
    }
    // an odd head size has no RoPE pairs
    KvGeometry odd = new KvGeometry(1, 1, 7);
    float[] w = new float[49];
    assertThatThrownBy(
            () ->
                manager(
                    odd,
                    KvCacheType.FP8_E4M3,
                    KvEncoding.CENTERED_MSE,
                    moments(odd, ROPE, new float[7], w)))
        .hasMessageContaining("even head size");
  }

  private static float[] random(SplittableRandom r, int n, double scale) {
    float[] x = new float[n];
    for (int i = 0; i < n; i++) {
      x[i] = (float) (r.nextGaussian() * scale);
    }
    return x;
  }
}
