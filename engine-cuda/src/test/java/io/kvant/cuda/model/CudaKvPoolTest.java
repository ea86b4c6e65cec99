package io.kvant.cuda.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kvant.cuda.device.CudaKernels;
import io.kvant.engine.kv.KeyRope;
import io.kvant.engine.kv.KvCacheConfig;
import io.kvant.engine.kv.KvCacheType;
import io.kvant.engine.kv.KvEncoding;
import io.kvant.engine.kv.KvGeometry;
import io.kvant.engine.kv.KvScales;
import io.kvant.engine.model.RopeStyle;
import org.junit.jupiter.api.Test;

/** Which KV encodings the device pool takes, and what they cost it (no GPU needed). */
class CudaKvPoolTest {
  @Test
  void thePoolTakesThePerTokenKiviAndCenteredEncodingsAndRefusesTheOthersNamingThem() {
    assertThat(CudaKvPool.encodingBits(KvEncoding.PER_TOKEN)).isZero();
    assertThat(CudaKvPool.encodingBits(KvEncoding.PER_TOKEN_MSE))
        .isEqualTo(CudaKernels.KV_TOKEN_MSE);
    assertThat(CudaKvPool.encodingBits(KvEncoding.KIVI)).isEqualTo(CudaKernels.KV_KEY_CHANNELS);
    assertThat(CudaKvPool.encodingBits(KvEncoding.KIVI_MSE))
        .isEqualTo(CudaKernels.KV_KEY_CHANNELS | CudaKernels.KV_TOKEN_MSE);
    assertThat(CudaKvPool.encodingBits(KvEncoding.CENTERED_MSE))
        .isEqualTo(CudaKernels.KV_TOKEN_MSE | CudaKernels.KV_CENTERED);
    assertThat(CudaKvPool.encodingBits(KvEncoding.CENTERED_QMSE))
        .isEqualTo(CudaKernels.KV_TOKEN_MSE | CudaKernels.KV_CENTERED | CudaKernels.KV_WEIGHTED);
    for (KvEncoding e :
        new KvEncoding[] {
          KvEncoding.HADAMARD,
          KvEncoding.HADAMARD_MSE,
          KvEncoding.KIVI_HADAMARD,
          KvEncoding.STATIC,
          KvEncoding.STATIC_HADAMARD
        }) {
      assertThat(CudaKvPool.supports(e)).as(e.optionName()).isFalse();
      assertThatThrownBy(() -> CudaKvPool.requireSupported(e))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("kv encoding " + e.optionName() + ":")
          .hasMessageContaining(
              "per-token, per-token-mse, kivi, kivi-mse, centered-mse or centered-qmse");
    }
  }

  @Test
  void theCpuDefaultOfEveryTypeIsOneThePoolTakes() {
    for (KvCacheType t : KvCacheType.values()) {
      assertThat(CudaKvPool.supports(KvEncoding.cpuDefault(t))).as(t.name()).isTrue();
    }
  }

  @Test
  void keysPerChannelCostEachBlockOneScalePerLayerHeadAndChannel() {
    KvGeometry g = new KvGeometry(4, 2, 64);
    KvCacheConfig int8 = KvCacheConfig.of(KvCacheType.INT8, 1 << 20);
    long perToken = CudaKvPool.factory(null, t -> KvEncoding.PER_TOKEN).bytesPerBlock(g, int8);
    assertThat(perToken).isEqualTo(int8.bytesPerBlock(g));
    assertThat(CudaKvPool.factory(null, t -> KvEncoding.PER_TOKEN_MSE).bytesPerBlock(g, int8))
        .isEqualTo(perToken);
    assertThat(CudaKvPool.factory(null, t -> KvEncoding.KIVI).bytesPerBlock(g, int8))
        .isEqualTo(perToken + 4L * 2 * 64 * Float.BYTES);
    KvCacheConfig f16 = KvCacheConfig.of(KvCacheType.F16, 1 << 20);
    assertThat(CudaKvPool.factory(null, t -> KvEncoding.KIVI).bytesPerBlock(g, f16))
        .isEqualTo(f16.bytesPerBlock(g));
  }

  /**
   * A centered pool uploads the key means as they are and each query moment matrix transposed (the
   * encoder's lanes read a column of W per step), and refuses statistics it cannot use.
   */
  @Test
  void centeredStatisticsAreTheMeansAndTheTransposedMoments() {
    KvGeometry g = new KvGeometry(2, 2, 4);
    int n = g.layers() * g.kvDim();
    float[] mean = new float[n];
    float[] moment = new float[n * g.headSize()];
    for (int i = 0; i < n; i++) {
      mean[i] = i * 0.5f - 3;
    }
    for (int i = 0; i < moment.length; i++) {
      moment[i] = (i % 7) * 0.25f; // diagonal entries >= 0, not symmetric
    }
    KeyRope rope = new KeyRope(10000, RopeStyle.HALF_SPLIT);
    KvScales scales = new KvScales(g, false, new float[n], new float[n], rope, mean, moment);
    float[][] mse = CudaKvPool.centeringStats(g, KvEncoding.CENTERED_MSE, scales);
    assertThat(mse).hasNumberOfRows(1);
    assertThat(mse[0]).containsExactly(mean);
    float[][] qmse = CudaKvPool.centeringStats(g, KvEncoding.CENTERED_QMSE, scales);
    assertThat(qmse[0]).containsExactly(mean);
    int hs = g.headSize();
    for (int h = 0; h < g.layers() * g.kvHeads(); h++) {
      for (int i = 0; i < hs; i++) {
        for (int j = 0; j < hs; j++) {
          assertThat(qmse[1][(h * hs + j) * hs + i]).isEqualTo(moment[(h * hs + i) * hs + j]);
        }
      }
    }
    KvScales maximaOnly = new KvScales(g, false, new float[n], new float[n]);
    assertThatThrownBy(() -> CudaKvPool.centeringStats(g, KvEncoding.CENTERED_MSE, maximaOnly))
        .hasMessageContaining("centered-mse needs calibrated key means");
    assertThatThrownBy(() -> CudaKvPool.centeringStats(g, KvEncoding.CENTERED_QMSE, null))
        .hasMessageContaining("centered-qmse needs calibrated key means");
    assertThatThrownBy(
            () ->
                CudaKvPool.centeringStats(
                    new KvGeometry(2, 2, 8), KvEncoding.CENTERED_QMSE, scales))
        .hasMessageContaining("the KV statistics are for");
  }
}
