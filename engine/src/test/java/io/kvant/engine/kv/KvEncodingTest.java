package io.kvant.engine.kv;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** {@link KvEncoding#HADAMARD} against scalar references written from its javadoc. */
class KvEncodingTest {
  /** Entry (i, j) of the orthonormal Walsh-Hadamard matrix of size n. */
  private static double h(int i, int j, int n) {
    return (Integer.bitCount(i & j) % 2 == 0 ? 1 : -1) / Math.sqrt(n);
  }

  private static double[] rotateRef(float[] x, int off, int n) {
    double[] y = new double[n];
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < n; j++) {
        y[i] += h(i, j, n) * x[off + j];
      }
    }
    return y;
  }

  @Test
  void rotationIsTheMatrixProductAndItsOwnInverse() {
    SplittableRandom r = new SplittableRandom(7);
    for (int n = 1; n <= 256; n <<= 1) {
      float[] x = new float[n + 3];
      for (int i = 0; i < x.length; i++) {
        x[i] = (float) (r.nextGaussian() * (i == 5 ? 20 : 1)); // one outlier channel
      }
      float[] y = x.clone();
      KvEncoding.rotate(y, 3, n);
      double[] ref = rotateRef(x, 3, n);
      for (int i = 0; i < n; i++) {
        assertThat((double) y[3 + i]).isCloseTo(ref[i], org.assertj.core.data.Offset.offset(1e-4));
      }
      assertThat(y[0]).isEqualTo(x[0]); // outside the range untouched
      KvEncoding.rotate(y, 3, n);
      for (int i = 0; i < n; i++) {
        assertThat(y[3 + i]).isCloseTo(x[3 + i], org.assertj.core.data.Offset.offset(1e-4f));
      }
    }
  }

  /**
   * One token written into a paged INT8/FP8 store; its keys' scores for basis queries and its
   * values' weighted sum are compared with the scalar encoding of the rotated vector (codes and
   * scale as {@link KvEncoding#PER_TOKEN} describes, applied to {@code H x / sqrt(n)}).
   */
  @Test
  void storeReadsTheScalarEncodingOfTheRotatedVector() {
    SplittableRandom r = new SplittableRandom(11);
    for (KvCacheType type : new KvCacheType[] {KvCacheType.INT8, KvCacheType.FP8_E4M3}) {
      for (int hs : new int[] {8, 16, 64}) {
        KvGeometry g = new KvGeometry(1, 2, hs);
        KvCacheManager kv =
            new KvCacheManager(
                g,
                new KvCacheConfig(
                    type, 16, 4L * 16 * g.bytesPerToken(type), EvictionPolicyKind.LRU, false),
                KvStoreFactory.host(KvEncoding.HADAMARD));
        int seq = kv.open(kv.findCachedPrefix(new int[] {1}, 1, "v"), 1);
        float[] k = new float[g.kvDim()];
        float[] v = new float[g.kvDim()];
        for (int i = 0; i < k.length; i++) {
          k[i] = (float) (r.nextGaussian() * (i % hs == 2 ? 15 : 1));
          v[i] = (float) r.nextGaussian();
        }
        kv.store().write(seq, 0, 0, k, 0, v, 0);
        for (int head = 0; head < 2; head++) {
          double[] kd = decodedRef(type, k, head * hs, hs);
          double[] vd = decodedRef(type, v, head * hs, hs);
          for (int j = 0; j < hs; j++) {
            float[] q = new float[hs];
            q[j] = 1f;
            float[] score = new float[1];
            kv.store().keyScores(seq, 0, head, q, 0, 1, score);
            double want = 0; // e_j . x  =  (H e_j / sqrt n) . y
            for (int i = 0; i < hs; i++) {
              want += h(i, j, hs) * kd[i];
            }
            assertThat((double) score[0])
                .isCloseTo(want, org.assertj.core.data.Offset.offset(1e-4));
          }
          float[] out = new float[hs + 1];
          out[1] = 0.5f; // the sum is added to what is there
          kv.store().addWeightedValues(seq, 0, head, new float[] {2f}, 1, out, 1);
          for (int j = 0; j < hs; j++) {
            double want = 0;
            for (int i = 0; i < hs; i++) {
              want += h(j, i, hs) * 2 * vd[i];
            }
            if (j == 0) {
              want += 0.5;
            }
            assertThat((double) out[1 + j])
                .isCloseTo(want, org.assertj.core.data.Offset.offset(1e-4));
          }
        }
        kv.free(seq);
      }
    }
  }

  /** scale * value(code) per element of the rotated head vector, by the javadoc's rules. */
  private static double[] decodedRef(KvCacheType type, float[] x, int off, int n) {
    double[] yd = rotateRef(x, off, n);
    float amax = 0; // float arithmetic, as the encoder's
    for (double e : yd) {
      amax = Math.max(amax, Math.abs((float) e));
    }
    double[] out = new double[n];
    for (int i = 0; i < n; i++) {
      float y = (float) yd[i];
      if (type == KvCacheType.INT8) {
        long c = Math.max(-127, Math.min(127, (long) Math.floor(y * (127f / amax) + 0.5)));
        out[i] = c * (double) (amax / 127f);
      } else {
        out[i] = KvScalingTest.e4m3(y * (448f / amax)) * (double) (amax / 448f);
      }
    }
    return out;
  }

  @Test
  void refusesF32AndHeadSizesThatAreNotPowersOfTwo() {
    KvCacheConfig c = KvCacheConfig.of(KvCacheType.INT8, 1 << 20);
    assertThatThrownBy(
            () ->
                new KvCacheManager(
                    new KvGeometry(1, 1, 12), c, KvStoreFactory.host(KvEncoding.HADAMARD)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("power-of-two head size");
    assertThatThrownBy(
            () ->
                new KvCacheManager(
                    new KvGeometry(1, 1, 8),
                    KvCacheConfig.of(KvCacheType.F32, 1 << 20),
                    KvStoreFactory.host(KvEncoding.HADAMARD)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("hadamard");
    assertThat(KvEncoding.parse(" Hadamard ")).isEqualTo(KvEncoding.HADAMARD);
    assertThatThrownBy(() -> KvEncoding.parse("kivvi")).hasMessageContaining("per-token");
  }
}
