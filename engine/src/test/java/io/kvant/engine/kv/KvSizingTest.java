package io.kvant.engine.kv;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** KV bytes per token and sequences per budget, for the RESULTS table (printed to the test log). */
class KvSizingTest {
  static final KvGeometry STORIES_260K = new KvGeometry(5, 4, 8);
  static final KvGeometry LLAMA_32_1B = new KvGeometry(16, 8, 64);

  private static int sequencesThatFit(KvGeometry g, KvCacheType type, long budget, int tokens) {
    KvCacheConfig c = new KvCacheConfig(type, 16, budget, EvictionPolicyKind.LRU, true);
    return c.blocks(g) / ((tokens + 15) / 16);
  }

  @Test
  void bytesPerTokenAndSequencesPerBudget() {
    assertThat(STORIES_260K.bytesPerToken(KvCacheType.F32)).isEqualTo(1280);
    assertThat(STORIES_260K.bytesPerToken(KvCacheType.INT8)).isEqualTo(480);
    assertThat(STORIES_260K.bytesPerToken(KvCacheType.FP8_E4M3)).isEqualTo(480);
    assertThat(LLAMA_32_1B.bytesPerToken(KvCacheType.F32)).isEqualTo(65_536);
    assertThat(LLAMA_32_1B.bytesPerToken(KvCacheType.INT8)).isEqualTo(17_408);
    assertThat(LLAMA_32_1B.bytesPerToken(KvCacheType.FP8_E4M3)).isEqualTo(17_408);

    long gib = 1L << 30;
    long mib64 = 64L << 20;
    assertThat(sequencesThatFit(LLAMA_32_1B, KvCacheType.F32, gib, 2048)).isEqualTo(8);
    assertThat(sequencesThatFit(LLAMA_32_1B, KvCacheType.INT8, gib, 2048)).isEqualTo(30);
    assertThat(sequencesThatFit(STORIES_260K, KvCacheType.F32, mib64, 512)).isEqualTo(102);
    assertThat(sequencesThatFit(STORIES_260K, KvCacheType.INT8, mib64, 512)).isEqualTo(273);

    StringBuilder out = new StringBuilder("KV sizing (block 16 tokens)\n");
    for (KvCacheType t : KvCacheType.values()) {
      out.append(
          String.format(
              "%-9s stories260K %5d B/token, %3d seqs x 512 tok in 64 MiB | "
                  + "Llama-3.2-1B %6d B/token, %2d seqs x 2048 tok in 1 GiB%n",
              t,
              STORIES_260K.bytesPerToken(t),
              sequencesThatFit(STORIES_260K, t, mib64, 512),
              LLAMA_32_1B.bytesPerToken(t),
              sequencesThatFit(LLAMA_32_1B, t, gib, 2048)));
    }
    System.out.print(out);
  }
}
