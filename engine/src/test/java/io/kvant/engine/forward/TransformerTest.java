package io.kvant.engine.forward;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.engine.kv.ContiguousKvStore;
import io.kvant.engine.model.LlamaConfig;
import io.kvant.engine.model.Model;
import io.kvant.engine.model.ModelLoader;
import io.kvant.engine.tensor.ComputePool;
import io.kvant.engine.testing.SharedModels;
import java.util.Optional;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The batched F32 forward pass against the float64 reference and against itself unbatched. */
class TransformerTest {
  static Model model;
  static ComputePool pool;

  @BeforeAll
  static void load() throws Exception {
    model =
        ModelLoader.load(SharedModels.require("stories260K/stories260K.gguf"), Optional.empty());
    pool = new ComputePool(2);
  }

  @AfterAll
  static void close() throws Exception {
    pool.close();
    model.close();
  }

  static ContiguousKvStore store(int slots) {
    LlamaConfig c = model.config();
    return new ContiguousKvStore(c.layers(), c.kvHeads(), c.headSize(), 256, slots);
  }

  static int[] randomPrompt(SplittableRandom r, int n) {
    int[] t = new int[n];
    t[0] = 1;
    for (int i = 1; i < n; i++) {
      t[i] = r.nextInt(3, model.config().vocabSize());
    }
    return t;
  }

  /**
   * Tolerance: the engine accumulates in float32 over at most 172 terms per dot product across 5
   * layers; relative errors of ~1e-6 per operation compound to well under 1e-3 in logits of
   * magnitude ~10. 2e-3 absolute leaves margin without hiding a wrong formula (a wrong RoPE
   * pairing, mask, or norm changes logits by whole units).
   */
  @Test
  void logitsMatchTheFloat64ReferenceOnSeveralPrompts() {
    ReferenceLlama ref = new ReferenceLlama(model.config(), model.weights());
    Transformer t = new Transformer(model.config(), model.weights(), pool);
    SplittableRandom r = new SplittableRandom(7);
    for (int len : new int[] {1, 5, 23}) {
      int[] prompt = randomPrompt(r, len);
      ContiguousKvStore kv = store(1);
      float[] logits = t.forward(Batch.ofSequence(0, 0, prompt), kv);
      double[] expected = ref.logits(prompt);
      double maxErr = 0;
      for (int i = 0; i < expected.length; i++) {
        maxErr = Math.max(maxErr, Math.abs(expected[i] - logits[i]));
      }
      assertThat(maxErr).as("prompt length %d", len).isLessThan(2e-3);
    }
  }

  @Test
  void batchOfSequencesGivesTheSameLogitsAsEachAlone() {
    Transformer t = new Transformer(model.config(), model.weights(), pool);
    SplittableRandom r = new SplittableRandom(11);
    int[][] prompts = {randomPrompt(r, 7), randomPrompt(r, 1), randomPrompt(r, 13)};
    int vocab = model.config().vocabSize();
    float[][] alone = new float[prompts.length][];
    for (int s = 0; s < prompts.length; s++) {
      alone[s] = t.forward(Batch.ofSequence(0, 0, prompts[s]), store(1));
    }
    int total = 0;
    for (int[] p : prompts) {
      total += p.length;
    }
    int[] tokens = new int[total];
    int[] positions = new int[total];
    int[] seqs = new int[total];
    int[] logitRows = new int[prompts.length];
    int row = 0;
    for (int s = 0; s < prompts.length; s++) {
      for (int i = 0; i < prompts[s].length; i++, row++) {
        tokens[row] = prompts[s][i];
        positions[row] = i;
        seqs[row] = s;
      }
      logitRows[s] = row - 1;
    }
    float[] batched = t.forward(new Batch(tokens, positions, seqs, logitRows), store(3));
    for (int s = 0; s < prompts.length; s++) {
      float[] mine = java.util.Arrays.copyOfRange(batched, s * vocab, (s + 1) * vocab);
      assertThat(mine).as("sequence %d", s).containsExactly(alone[s]);
    }
  }

  @Test
  void decodingTokenByTokenMatchesOnePrefillOfTheWholePrompt() {
    Transformer t = new Transformer(model.config(), model.weights(), pool);
    int[] prompt = randomPrompt(new SplittableRandom(3), 9);
    float[] whole = t.forward(Batch.ofSequence(0, 0, prompt), store(1));
    ContiguousKvStore kv = store(1);
    float[] last = null;
    for (int i = 0; i < prompt.length; i++) {
      last = t.forward(Batch.ofSequence(0, i, prompt[i]), kv);
    }
    for (int i = 0; i < whole.length; i++) {
      assertThat(last[i]).isCloseTo(whole[i], org.assertj.core.data.Offset.offset(1e-4f));
    }
  }
}
