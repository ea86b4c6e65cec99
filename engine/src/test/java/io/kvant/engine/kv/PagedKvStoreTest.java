package io.kvant.engine.kv;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The paged store against the contiguous reference store, for each storage type. */
class PagedKvStoreTest {
  private static final KvGeometry G = new KvGeometry(2, 3, 16);

  private static double attentionError(KvCacheType type, SplittableRandom r) {
    return attentionError(type, KvEncoding.PER_TOKEN, r);
  }

  private static double attentionError(KvCacheType type, KvEncoding encoding, SplittableRandom r) {
    return attentionError(type, encoding, r, 16, 53); // several blocks of 16 plus a partial one
  }

  private static double attentionError(
      KvCacheType type, KvEncoding encoding, SplittableRandom r, int blockSize, int len) {
    KvCacheManager kv =
        new KvCacheManager(
            G,
            new KvCacheConfig(
                type,
                blockSize,
                (4L * len / blockSize + 8) * blockSize * G.bytesPerToken(type),
                EvictionPolicyKind.LRU,
                true),
            KvStoreFactory.host(encoding, encoding.needsScales() ? gaussianScales() : null));
    ContiguousKvStore ref = new ContiguousKvStore(G.layers(), G.kvHeads(), G.headSize(), len, 1);
    int other = kv.open(kv.findCachedPrefix(new int[] {9, 9}, 2, "v"), 20); // interleaved tables
    int seq = kv.open(kv.findCachedPrefix(new int[] {1}, 1, "v"), len);
    PagedKvStore store = (PagedKvStore) kv.store();
    int dim = G.kvDim();
    for (int pos = 0; pos < len; pos++) {
      for (int l = 0; l < G.layers(); l++) {
        float[] k = new float[dim];
        float[] v = new float[dim];
        for (int i = 0; i < dim; i++) {
          k[i] = (float) r.nextGaussian();
          v[i] = (float) r.nextGaussian();
        }
        store.write(seq, l, pos, k, 0, v, 0);
        ref.write(0, l, pos, k, 0, v, 0);
        store.write(other, l, pos % 20, v, 0, k, 0);
      }
    }
    double worst = 0;
    float[] q = new float[G.headSize() + 3];
    for (int l = 0; l < G.layers(); l++) {
      for (int h = 0; h < G.kvHeads(); h++) {
        for (int i = 0; i < q.length; i++) {
          q[i] = (float) r.nextGaussian();
        }
        float[] a = new float[len];
        float[] b = new float[len];
        store.keyScores(seq, l, h, q, 3, len, a);
        ref.keyScores(0, l, h, q, 3, len, b);
        for (int t = 0; t < len; t++) {
          worst = Math.max(worst, Math.abs(a[t] - b[t]) / 4.0); // scores have std ~4
        }
        float[] w = new float[len];
        for (int t = 0; t < len; t++) {
          w[t] = (float) r.nextDouble() / len;
        }
        float[] oa = new float[G.headSize() + 5];
        float[] ob = new float[G.headSize() + 5];
        store.addWeightedValues(seq, l, h, w, len, oa, 5);
        ref.addWeightedValues(0, l, h, w, len, ob, 5);
        for (int i = 0; i < oa.length; i++) {
          worst = Math.max(worst, Math.abs(oa[i] - ob[i]) * 10); // outputs ~0.1
        }
      }
    }
    kv.free(seq);
    kv.free(other);
    kv.checkInvariants();
    return worst;
  }

  /** Static maxima for the test's standard normal keys and values: 4.5 sigma. */
  private static KvScales gaussianScales() {
    float[] a = new float[G.layers() * G.kvDim()];
    java.util.Arrays.fill(a, 4.5f);
    return new KvScales(G, false, a, a);
  }

  @Test
  void everyUnrotatedEncodingStaysWithinAFewPercent() {
    for (KvEncoding e :
        new KvEncoding[] {
          KvEncoding.PER_TOKEN_MSE, KvEncoding.KIVI, KvEncoding.KIVI_MSE, KvEncoding.STATIC
        }) {
      assertThat(attentionError(KvCacheType.INT8, e, new SplittableRandom(6)))
          .as("int8 " + e)
          .isLessThan(0.03);
      assertThat(attentionError(KvCacheType.FP8_E4M3, e, new SplittableRandom(7)))
          .as("fp8 " + e)
          // Per-channel E4M3 scales leave a token's largest element rounded too (per-token makes
          // it exact), and keys re-coded when a block's channel grows are rounded twice.
          .isLessThan(e == KvEncoding.PER_TOKEN_MSE ? 0.08 : 0.12);
    }
  }

  @Test
  void f32IsExactUpToSummationOrder() {
    assertThat(attentionError(KvCacheType.F32, new SplittableRandom(1))).isLessThan(1e-5);
  }

  @Test
  void f32IsExactUpToSummationOrderWhateverTheBlockAndItsLastPart() {
    // Blocks of one to four vectors of tokens: the scores take four blocks per pass (one vector
    // each), or the four vectors of one block, or two blocks; partial last blocks in each case.
    int l = jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.length();
    SplittableRandom r = new SplittableRandom(2);
    for (int block : new int[] {l, 2 * l, 4 * l}) {
      for (int len :
          new int[] {1, block - 1, 4 * block + 1, 5 * block - 2, 2 * block + 3 * l + 1}) {
        assertThat(attentionError(KvCacheType.F32, KvEncoding.PER_TOKEN, r, block, len))
            .as("block %d, %d positions", block, len)
            .isLessThan(1e-5);
      }
    }
  }

  @Test
  void int8StaysWithinAFewPercent() {
    assertThat(attentionError(KvCacheType.INT8, new SplittableRandom(2))).isLessThan(0.03);
  }

  @Test
  void fp8StaysWithinAFewPercent() {
    assertThat(attentionError(KvCacheType.FP8_E4M3, new SplittableRandom(3))).isLessThan(0.08);
  }

  @Test
  void hadamardInt8AndFp8StayWithinAFewPercent() {
    assertThat(attentionError(KvCacheType.INT8, KvEncoding.HADAMARD, new SplittableRandom(4)))
        .isLessThan(0.03);
    // Gaussian channels have no outlier for the rotation to spread: FP8 is as coarse as without it.
    assertThat(attentionError(KvCacheType.FP8_E4M3, KvEncoding.HADAMARD, new SplittableRandom(5)))
        .isLessThan(0.1);
  }
}
