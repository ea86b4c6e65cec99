package io.kvant.engine.forward;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.engine.generate.FinishReason;
import io.kvant.engine.generate.GenerationResult;
import io.kvant.engine.generate.Generator;
import io.kvant.engine.kv.ContiguousKvStore;
import io.kvant.engine.model.Model;
import io.kvant.engine.model.ModelLoader;
import io.kvant.engine.sample.SamplingParams;
import io.kvant.engine.tensor.ComputePool;
import io.kvant.engine.testing.SharedModels;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * TinyStories-656K ({@code ../shared/models/tinystories-656k}), a Hugging Face folder exactly as
 * published: its tied embedding exists only as a safetensors metadata alias, and its tokenizer.json
 * is a SentencePiece-style BPE with a {@code Sequence} normalizer (Prepend + Replace).
 *
 * <p>Greedy ids are checked against {@link HfLlamaFloat64}, an independent float64 implementation
 * written from the config and weights, and both against what Hugging Face transformers 5.17.0
 * generated for the same prompts ({@code tools/tinystories/hf_reference.py}, float64 and float32
 * agreed); tokenization against transformers' tokenizer on the same texts.
 */
class TinyStories656kTest {
  static final String PROMPT = "Once upon a time,";
  static final String PROMPT_EOS = "Once upon a time, there was a little girl named Lily.";

  /** transformers: 40 greedy tokens after {@link #PROMPT}. */
  static final int[] HF_GREEDY = {
    1137, 117, 1513, 101, 87, 1076, 1005, 361, 1377, 436, 1027, 1376, 1203, 615, 1377, 1257, 939,
    306, 1307, 119, 71, 759, 1251, 1450, 77, 122, 1377, 265, 2029, 1307, 119, 1368, 1287, 563, 1799,
    163, 1103, 160, 1982, 276
  };

  /** transformers: 40 greedy tokens after {@link #PROMPT_EOS}, not stopping at EOS (2). */
  static final int[] HF_GREEDY_EOS = {
    208, 183, 209, 210, 2, 990, 1726, 1061, 178, 921, 356, 819, 241, 294, 144, 1083, 353, 486, 303,
    328, 552, 319, 1269, 776, 115, 133, 114, 100, 1148, 92, 274, 776, 204, 1578, 1180, 294, 271,
    1153, 498, 452
  };

  /** transformers' tokenizer (with BOS) on a few texts, and what it decodes them to. */
  static final Map<String, int[]> HF_ENCODE =
      Map.of(
          PROMPT,
          new int[] {1, 80, 147, 201, 282, 57, 8},
          PROMPT_EOS,
          new int[] {1, 80, 147, 201, 282, 215, 286, 598, 629, 10},
          "Hello world",
          new int[] {1, 80, 1288, 139, 410, 555},
          "Tom and Sue  like   cats!\nThe end.",
          new int[] {1, 80, 875, 566, 80, 399, 80, 80, 476, 71, 1254, 247, 183, 10},
          "Café ünïcode ☃ 42",
          new int[] {1, 80, 28, 53, 511, 66, 321, 434, 80, 15, 13});

  static final Map<String, String> HF_DECODE = Map.of("Café ünïcode ☃ 42", "Caf ncode  42");

  static Path dir;
  static Model model;
  static ComputePool pool;

  @BeforeAll
  static void load() throws Exception {
    dir = SharedModels.require("tinystories-656k/model.safetensors").getParent();
    model = ModelLoader.load(dir, Optional.empty());
    pool = new ComputePool(1);
  }

  @AfterAll
  static void close() throws Exception {
    pool.close();
    model.close();
  }

  @Test
  void loadsAsPublished() {
    assertThat(model.config().dim()).isEqualTo(128);
    assertThat(model.config().layers()).isEqualTo(2);
    assertThat(model.config().heads()).isEqualTo(8);
    assertThat(model.config().kvHeads()).isEqualTo(4);
    assertThat(model.config().vocabSize()).isEqualTo(2048);
    // The embedding is the lm_head tensor, reached through the metadata alias.
    assertThat(model.weights().output()).isSameAs(model.weights().embedding());
    assertThat(model.tokenizer().bos()).isEqualTo(1);
    assertThat(model.tokenizer().eos()).isEqualTo(2);
  }

  @Test
  void tokenizesLikeTransformers() {
    for (Map.Entry<String, int[]> e : HF_ENCODE.entrySet()) {
      int[] ids = model.tokenizer().encode(e.getKey(), true);
      assertThat(ids).as(e.getKey()).isEqualTo(e.getValue());
      String expected = HF_DECODE.getOrDefault(e.getKey(), e.getKey());
      assertThat(model.tokenizer().decode(ids)).as(e.getKey()).isEqualTo(expected);
    }
  }

  @Test
  void greedyIdsEqualTheFloat64ReferenceAndTransformers() throws Exception {
    int[] prompt = model.tokenizer().encode(PROMPT, true);
    int[] reference = referenceGreedy(prompt, 40);
    assertThat(reference).as("float64 reference vs transformers").isEqualTo(HF_GREEDY);
    Generator g =
        new Generator(new Transformer(model.config(), model.weights(), pool), model.tokenizer());
    GenerationResult r = g.generate(prompt, 40, SamplingParams.GREEDY, List.of(), s -> {});
    assertThat(r.tokens()).isEqualTo(reference);
    assertThat(r.finishReason()).isEqualTo(FinishReason.LENGTH);
    assertThat(r.text()).startsWith(" an ordinary cat named Kitty. Kitty loved to eat yummy food.");
  }

  /** Past an EOS the model keeps going; kvant's forward pass follows it all the way. */
  @Test
  void forwardPassFollowsTheReferenceThroughEos() throws Exception {
    int[] prompt = model.tokenizer().encode(PROMPT_EOS, true);
    int[] reference = referenceGreedy(prompt, 40);
    assertThat(reference).isEqualTo(HF_GREEDY_EOS);

    Transformer t = new Transformer(model.config(), model.weights(), pool);
    var c = model.config();
    ContiguousKvStore kv = new ContiguousKvStore(c.layers(), c.kvHeads(), c.headSize(), 64, 1);
    int slot = kv.acquire();
    float[] logits = t.forward(Batch.ofSequence(slot, 0, prompt), kv);
    int[] ids = new int[40];
    for (int i = 0; i < ids.length; i++) {
      ids[i] = argmax(logits);
      logits = t.forward(Batch.ofSequence(slot, prompt.length + i, ids[i]), kv);
    }
    assertThat(ids).isEqualTo(reference);

    // The generator stops there, as it should.
    GenerationResult r =
        new Generator(t, model.tokenizer())
            .generate(prompt, 40, SamplingParams.GREEDY, List.of(), s -> {});
    assertThat(r.tokens()).isEqualTo(java.util.Arrays.copyOf(reference, 4));
    assertThat(r.finishReason()).isEqualTo(FinishReason.STOP);
  }

  private static int[] referenceGreedy(int[] prompt, int n) throws Exception {
    HfLlamaFloat64 ref = new HfLlamaFloat64(dir, prompt.length + n);
    double[] logits = null;
    for (int id : prompt) {
      logits = ref.step(id);
    }
    int[] out = new int[n];
    for (int i = 0; i < n; i++) {
      out[i] = HfLlamaFloat64.argmax(logits);
      logits = ref.step(out[i]);
    }
    return out;
  }

  private static int argmax(float[] v) {
    int best = 0;
    for (int i = 1; i < v.length; i++) {
      if (v[i] > v[best]) {
        best = i;
      }
    }
    return best;
  }
}
