package io.kvant.cuda.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kvant.cuda.device.CudaKernels;
import io.kvant.engine.kv.KvCacheConfig;
import io.kvant.engine.kv.KvCacheType;
import io.kvant.engine.kv.KvEncoding;
import io.kvant.engine.kv.KvGeometry;
import org.junit.jupiter.api.Test;

/** Which KV encodings the device pool takes, and what they cost it (no GPU needed). */
class CudaKvPoolTest {
  @Test
  void thePoolTakesThePerTokenAndKiviEncodingsAndRefusesTheOthersNamingThem() {
    assertThat(CudaKvPool.encodingBits(KvEncoding.PER_TOKEN)).isZero();
    assertThat(CudaKvPool.encodingBits(KvEncoding.PER_TOKEN_MSE))
        .isEqualTo(CudaKernels.KV_TOKEN_MSE);
    assertThat(CudaKvPool.encodingBits(KvEncoding.KIVI)).isEqualTo(CudaKernels.KV_KEY_CHANNELS);
    assertThat(CudaKvPool.encodingBits(KvEncoding.KIVI_MSE))
        .isEqualTo(CudaKernels.KV_KEY_CHANNELS | CudaKernels.KV_TOKEN_MSE);
    for (KvEncoding e :
        new KvEncoding[] {
          KvEncoding.HADAMARD,
          KvEncoding.HADAMARD_MSE,
          KvEncoding.KIVI_HADAMARD,
          KvEncoding.STATIC,
          KvEncoding.STATIC_HADAMARD,
          KvEncoding.CENTERED_MSE,
          KvEncoding.CENTERED_QMSE
        }) {
      assertThat(CudaKvPool.supports(e)).as(e.optionName()).isFalse();
      assertThatThrownBy(() -> CudaKvPool.requireSupported(e))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("kv encoding " + e.optionName() + ":")
          .hasMessageContaining("per-token, per-token-mse, kivi or kivi-mse");
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
}
