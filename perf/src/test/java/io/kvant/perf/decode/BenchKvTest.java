package io.kvant.perf.decode;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kvant.engine.forward.Batch;
import io.kvant.engine.forward.Transformer;
import io.kvant.engine.model.LlamaConfig;
import io.kvant.engine.model.Model;
import io.kvant.engine.model.ModelLoader;
import io.kvant.engine.tensor.ComputePool;
import io.kvant.engine.testing.SharedModels;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** The two KV stores a CPU decode benchmark can attend over. */
class BenchKvTest {
  @Test
  void bothStoresDecodeTheGoldenIdsOfStories260KForEverySequence() throws Exception {
    int[] golden = SharedModels.STORIES260K_GOLDEN;
    try (Model m =
            ModelLoader.load(
                SharedModels.require("stories260K/stories260K.gguf"), Optional.empty());
        ComputePool pool = new ComputePool(1)) {
      LlamaConfig c = m.config();
      Transformer t = new Transformer(c, m.weights(), pool);
      for (BenchKv kind : BenchKv.values()) {
        // three sequences side by side; the first is released and its slot reused, as a decode
        // benchmark's warm-up sequence is before the timed one
        BenchKv.Slots slots = kind.open(c, 3, golden.length);
        slots.release(slots.acquire());
        int[] seqs = {slots.acquire(), slots.acquire(), slots.acquire()};
        int bos = m.tokenizer().bos();
        int[] tokens = {bos, bos, bos};
        for (int pos = 0; pos < golden.length; pos++) {
          float[] logits =
              t.forward(
                  new Batch(tokens.clone(), new int[] {pos, pos, pos}, seqs, new int[] {0, 1, 2}),
                  slots.store());
          for (int s = 0; s < 3; s++) {
            tokens[s] = DecodeBench.argmax(logits, s * c.vocabSize(), c.vocabSize());
            assertThat(tokens[s])
                .as("%s store, sequence %d, position %d", kind, s, pos + 1)
                .isEqualTo(golden[pos]);
          }
        }
        for (int seq : seqs) {
          slots.release(seq);
        }
      }
    }
  }

  @Test
  void thePagedStoreRefusesASequenceBeyondItsCapacity() throws Exception {
    try (Model m =
        ModelLoader.load(SharedModels.require("stories260K/stories260K.gguf"), Optional.empty())) {
      BenchKv.Slots slots = BenchKv.PAGED.open(m.config(), 1, 40);
      slots.acquire();
      assertThatThrownBy(slots::acquire)
          .isInstanceOf(IllegalStateException.class)
          .hasMessageContaining("no KV blocks left");
    }
  }

  @Test
  void anUnknownStoreNameIsRefusedNamingTheOption() {
    assertThat(BenchKv.parse("Paged")).isEqualTo(BenchKv.PAGED);
    assertThat(BenchKv.parse("contiguous")).isEqualTo(BenchKv.CONTIGUOUS);
    assertThatThrownBy(() -> BenchKv.parse("ring"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("--kv-store")
        .hasMessageContaining("ring");
  }
}
