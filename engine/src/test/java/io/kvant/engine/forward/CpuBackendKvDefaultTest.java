package io.kvant.engine.forward;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.engine.kv.KeyRope;
import io.kvant.engine.kv.KvCacheType;
import io.kvant.engine.kv.KvEncoding;
import io.kvant.engine.kv.KvGeometry;
import io.kvant.engine.kv.KvScales;
import io.kvant.engine.model.RopeStyle;
import io.kvant.engine.tensor.ComputePool;
import org.junit.jupiter.api.Test;

/** The CPU's KV defaults with and without calibrated statistics at hand. */
public class CpuBackendKvDefaultTest {
  static final KvGeometry G = new KvGeometry(1, 1, 2);

  /** Statistics with key moments (what the centered encodings need): one kv head of size 2. */
  public static KvScales keyMoments() {
    return new KvScales(
        G,
        false,
        new float[2],
        new float[2],
        new KeyRope(10000, RopeStyle.ADJACENT_PAIRS),
        new float[2],
        new float[4]);
  }

  /** Statistics with the maxima only (no key moments). */
  public static KvScales maximaOnly() {
    return new KvScales(G, false, new float[2], new float[2]);
  }

  @Test
  void fp8IsCenteredQmseOnlyWithKeyMomentsAndInt8StaysKivi() {
    KvScales moments = keyMoments();
    KvScales maxima = maximaOnly();
    try (ComputePool pool = new ComputePool(1)) {
      CpuBackend cpu = new CpuBackend(pool);
      assertThat(cpu.defaultKvEncoding(KvCacheType.FP8_E4M3, moments))
          .isEqualTo(KvEncoding.CENTERED_QMSE);
      assertThat(cpu.defaultKvEncoding(KvCacheType.FP8_E4M3, maxima))
          .isEqualTo(KvEncoding.PER_TOKEN_MSE);
      assertThat(cpu.defaultKvEncoding(KvCacheType.FP8_E4M3, null))
          .isEqualTo(KvEncoding.PER_TOKEN_MSE)
          .isEqualTo(cpu.defaultKvEncoding(KvCacheType.FP8_E4M3));
      assertThat(cpu.defaultKvEncoding(KvCacheType.INT8, moments)).isEqualTo(KvEncoding.KIVI);
      assertThat(cpu.defaultKvEncoding(KvCacheType.F32, moments)).isEqualTo(KvEncoding.PER_TOKEN);
    }
  }
}
