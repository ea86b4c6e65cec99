package io.kvant.cuda.model;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.cuda.CudaBackend;
import io.kvant.cuda.GpuFixture;
import io.kvant.cuda.device.CudaDevice;
import io.kvant.engine.forward.Batch;
import io.kvant.engine.kv.EvictionPolicyKind;
import io.kvant.engine.kv.KvCacheConfig;
import io.kvant.engine.kv.KvCacheManager;
import io.kvant.engine.kv.KvCacheType;
import io.kvant.engine.kv.KvGeometry;
import io.kvant.engine.model.LlamaConfig;
import io.kvant.engine.model.RopeStyle;
import io.kvant.engine.sample.Sampler;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Whole forward passes under {@link MgemvSplits#MQ_WIDE_UNITS} and {@link
 * MgemvSplits#MQ_WIDE_UNITS_PAIRED} (the one-row INT4 products on {@code mqp4}, from unit copies)
 * against {@link MgemvSplits#MQ_WIDE} on the same synthetic model: a shape whose every layer matrix
 * {@code mqp4} takes (width 2,048, and an FFN wide enough that the paired policy's gate/up launch
 * takes two row pairs a warp on this device; symmetric INT4 in groups of 128), an 8-token prefill
 * (tiled products for both), then one-row decode steps fed the same tokens, whose logits must agree
 * within 1e-2 of the largest (mqp4 sums each 8-column run in F16, the tiled products in F32: two
 * layers of such differences, not a different product).
 */
@Tag("gpu")
class MqpUnitsGpuTest {
  @ParameterizedTest
  @EnumSource(
      value = MgemvSplits.class,
      names = {"MQ_WIDE_UNITS", "MQ_WIDE_UNITS_PAIRED"})
  void oneRowDecodeOnUnitsAgreesWithTheTiledProducts(MgemvSplits policy) {
    CudaBackend backend = GpuFixture.backend();
    CudaDevice d = backend.device();
    d.makeCurrent();
    // gate/up pairs for six blocks an SM of one round (CudaKernels.mqpRounds), in whole units
    int ffn = (8 * 6 * d.multiprocessors() + 1023) / 1024 * 1024;
    assertThat(backend.kernels().mqpRounds(ffn, policy.unitsPaired()))
        .as("gate/up rounds under %s", policy)
        .isEqualTo(policy.unitsPaired() ? 2 : 1);
    LlamaConfig c =
        new LlamaConfig(2048, ffn, 2, 16, 4, 8192, 512, 500000f, 1e-5f, RopeStyle.HALF_SPLIT);
    DeviceModel model =
        SyntheticModels.createQuantized(
            d, backend.kernels(), c, SyntheticModels.QuantKind.INT4_G128, 35);
    CudaTransformer tiled = new CudaTransformer(d, backend.kernels(), backend.gemm(), model, false);
    CudaTransformer units = new CudaTransformer(d, backend.kernels(), backend.gemm(), model, false);
    try {
      tiled.setMgemvSplits(MgemvSplits.MQ_WIDE);
      units.setMgemvSplits(policy);
      KvGeometry g = new KvGeometry(c.layers(), c.kvHeads(), c.headSize());
      long budget = 64L * g.bytesPerToken(KvCacheType.F16);
      KvCacheManager kvA = kv(backend, g, budget);
      KvCacheManager kvB = kv(backend, g, budget);
      int prompt = 8;
      int[] tokens = new SplittableRandom(5).ints(prompt, 0, c.vocabSize()).toArray();
      int sa = kvA.open(kvA.findCachedPrefix(tokens, prompt, "a"), prompt);
      int sb = kvB.open(kvB.findCachedPrefix(tokens, prompt, "b"), prompt);
      int[] pos = new int[prompt];
      for (int i = 0; i < prompt; i++) {
        pos[i] = i;
      }
      float[] la = tiled.forward(prefill(tokens, pos, sa), kvA.store());
      float[] lb = units.forward(prefill(tokens, pos, sb), kvB.store());
      assertThat(QuantizedKernelsGpuTest.relError(lb, la))
          .as("prefill (tiled products on both)")
          .isLessThan(1e-5);
      int next = Sampler.argmax(la);
      for (int step = 0; step < 6; step++) {
        int p = prompt + step;
        kvA.grow(sa, p + 1);
        kvB.grow(sb, p + 1);
        la =
            tiled.forward(
                new Batch(new int[] {next}, new int[] {p}, new int[] {sa}, new int[] {0}),
                kvA.store());
        lb =
            units.forward(
                new Batch(new int[] {next}, new int[] {p}, new int[] {sb}, new int[] {0}),
                kvB.store());
        assertThat(lb).hasSameSizeAs(la);
        assertThat(QuantizedKernelsGpuTest.relError(lb, la))
            .as("decode step %d logits", step)
            .isLessThan(1e-2);
        next = Sampler.argmax(la);
      }
    } finally {
      units.close();
      tiled.close();
    }
  }

  private static KvCacheManager kv(CudaBackend backend, KvGeometry g, long budget) {
    return new KvCacheManager(
        g,
        new KvCacheConfig(KvCacheType.F16, 16, budget, EvictionPolicyKind.TINY_LFU, false),
        backend.kvStorage());
  }

  private static Batch prefill(int[] tokens, int[] pos, int seq) {
    int[] seqs = new int[tokens.length];
    java.util.Arrays.fill(seqs, seq);
    return new Batch(tokens, pos, seqs, new int[] {tokens.length - 1});
  }
}
