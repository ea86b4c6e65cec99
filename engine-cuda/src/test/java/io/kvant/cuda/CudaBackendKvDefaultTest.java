package io.kvant.cuda;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.engine.forward.CpuBackend;
import io.kvant.engine.forward.CpuBackendKvDefaultTest;
import io.kvant.engine.kv.KvCacheType;
import io.kvant.engine.kv.KvEncoding;
import io.kvant.engine.kv.KvScales;
import io.kvant.engine.tensor.ComputePool;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * The GPU's KV defaults follow the CPU's rule, with and without calibrated statistics (no device
 * needed: CudaModelGpuTest asserts the same through a backend on a GPU).
 */
class CudaBackendKvDefaultTest {
  @Test
  void theGpuPicksWhatTheCpuPicksForEveryTypeAndStatistics() {
    KvScales moments = CpuBackendKvDefaultTest.keyMoments();
    KvScales maxima = CpuBackendKvDefaultTest.maximaOnly();
    try (ComputePool pool = new ComputePool(1)) {
      CpuBackend cpu = new CpuBackend(pool);
      for (KvCacheType t : KvCacheType.values()) {
        for (KvScales s : Arrays.asList(moments, maxima, null)) {
          assertThat(CudaBackend.kvDefault(t, s))
              .as("%s with %s", t, s == moments ? "key moments" : s == null ? "none" : "maxima")
              .isEqualTo(cpu.defaultKvEncoding(t, s));
        }
      }
    }
    assertThat(CudaBackend.kvDefault(KvCacheType.FP8_E4M3, moments))
        .isEqualTo(KvEncoding.CENTERED_QMSE);
    assertThat(CudaBackend.kvDefault(KvCacheType.FP8_E4M3, null))
        .isEqualTo(KvEncoding.PER_TOKEN_MSE);
  }
}
