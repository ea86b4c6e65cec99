package io.kvant.engine.forward;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.engine.format.safetensors.SafetensorsDtype;
import io.kvant.engine.format.safetensors.SafetensorsWriter;
import io.kvant.engine.generate.GenerationResult;
import io.kvant.engine.generate.Generator;
import io.kvant.engine.kv.ContiguousKvStore;
import io.kvant.engine.model.LayerWeights;
import io.kvant.engine.model.LlamaConfig;
import io.kvant.engine.model.Model;
import io.kvant.engine.model.ModelLoader;
import io.kvant.engine.model.RopeStyle;
import io.kvant.engine.sample.SamplingParams;
import io.kvant.engine.tensor.ComputePool;
import io.kvant.engine.tensor.Tensor;
import io.kvant.engine.testing.SharedModels;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Hugging Face loader (safetensors + config.json) on real weights: stories260K is written out
 * as a Hugging Face Llama folder, the way HF publishes Llama checkpoints (Q and K rows in the
 * half-split RoPE order), and must give the GGUF's logits and golden greedy ids. A Qwen2-style
 * variant with q/k/v biases is checked against the float64 reference.
 */
class HuggingFaceFolderTest {
  @TempDir Path dir;

  static byte[] f32(float[] v) {
    ByteBuffer b = ByteBuffer.allocate(v.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (float x : v) {
      b.putFloat(x);
    }
    return b.array();
  }

  /** Row-major floats of a tensor, rows reordered by {@code rowOrder} (null: as is). */
  static float[] rows(Tensor t, int[] rowOrder) {
    float[] out = new float[t.rows() * t.cols()];
    for (int r = 0; r < t.rows(); r++) {
      t.dequantizeRow(rowOrder == null ? r : rowOrder[r], out, r * t.cols());
    }
    return out;
  }

  /**
   * HF row {@code h*hs + i} is GGUF row {@code h*hs + 2i}, and HF row {@code h*hs + hs/2 + i} is
   * GGUF row {@code h*hs + 2i + 1}: the inverse of the permutation llama.cpp's converter applies.
   */
  static int[] halfSplitOrder(int heads, int hs) {
    int[] order = new int[heads * hs];
    for (int h = 0; h < heads; h++) {
      for (int i = 0; i < hs / 2; i++) {
        order[h * hs + i] = h * hs + 2 * i;
        order[h * hs + hs / 2 + i] = h * hs + 2 * i + 1;
      }
    }
    return order;
  }

  static void add(SafetensorsWriter w, String name, float[] data, long... shape) {
    w.add(name, SafetensorsDtype.F32, shape, f32(data));
  }

  /** Writes {@code m} as an HF folder; biases (if not null) are added to q/k/v as Qwen2 has. */
  static void writeHf(Model m, Path out, String modelType, float[][][] biases) throws Exception {
    LlamaConfig c = m.config();
    int hs = c.headSize();
    int[] qOrder = halfSplitOrder(c.heads(), hs);
    int[] kOrder = halfSplitOrder(c.kvHeads(), hs);
    SafetensorsWriter w = new SafetensorsWriter();
    add(
        w,
        "model.embed_tokens.weight",
        rows(m.weights().embedding(), null),
        c.vocabSize(),
        c.dim());
    for (int l = 0; l < c.layers(); l++) {
      LayerWeights lw = m.weights().layers().get(l);
      String p = "model.layers." + l + ".";
      add(w, p + "input_layernorm.weight", lw.attnNorm(), c.dim());
      add(w, p + "post_attention_layernorm.weight", lw.ffnNorm(), c.dim());
      add(w, p + "self_attn.q_proj.weight", rows(lw.wq(), qOrder), c.dim(), c.dim());
      add(w, p + "self_attn.k_proj.weight", rows(lw.wk(), kOrder), c.kvDim(), c.dim());
      add(w, p + "self_attn.v_proj.weight", rows(lw.wv(), null), c.kvDim(), c.dim());
      add(w, p + "self_attn.o_proj.weight", rows(lw.wo(), null), c.dim(), c.dim());
      add(w, p + "mlp.gate_proj.weight", rows(lw.wGate(), null), c.hiddenDim(), c.dim());
      add(w, p + "mlp.up_proj.weight", rows(lw.wUp(), null), c.hiddenDim(), c.dim());
      add(w, p + "mlp.down_proj.weight", rows(lw.wDown(), null), c.dim(), c.hiddenDim());
      if (biases != null) {
        add(w, p + "self_attn.q_proj.bias", biases[l][0], c.dim());
        add(w, p + "self_attn.k_proj.bias", biases[l][1], c.kvDim());
        add(w, p + "self_attn.v_proj.bias", biases[l][2], c.kvDim());
      }
    }
    add(w, "model.norm.weight", m.weights().outputNorm(), c.dim());
    Files.createDirectories(out);
    w.write(out.resolve("model.safetensors"));
    Files.writeString(
        out.resolve("config.json"),
        """
        {"model_type": "%s", "hidden_size": %d, "intermediate_size": %d,
         "num_hidden_layers": %d, "num_attention_heads": %d, "num_key_value_heads": %d,
         "vocab_size": %d, "max_position_embeddings": 512, "rope_theta": 10000.0,
         "rms_norm_eps": 1e-05, "tie_word_embeddings": true}
        """
            .formatted(
                modelType,
                c.dim(),
                c.hiddenDim(),
                c.layers(),
                c.heads(),
                c.kvHeads(),
                c.vocabSize()));
  }

  static float[] logits(Model m, ComputePool pool, int[] prompt) {
    LlamaConfig c = m.config();
    return new Transformer(c, m.weights(), pool)
        .forward(
            Batch.ofSequence(0, 0, prompt),
            new ContiguousKvStore(c.layers(), c.kvHeads(), c.headSize(), 64, 1));
  }

  @Test
  void aHuggingFaceLlamaFolderGivesTheGgufLogitsAndGoldenIds() throws Exception {
    Path stories = SharedModels.require("stories260K/stories260K.gguf");
    Path tok = SharedModels.require("stories260K/tok512.bin");
    try (Model gguf = ModelLoader.load(stories, Optional.empty());
        ComputePool pool = new ComputePool(2)) {
      writeHf(gguf, dir.resolve("hf"), "llama", null);
      try (Model hf = ModelLoader.load(dir.resolve("hf"), Optional.of(tok))) {
        assertThat(hf.format()).isEqualTo("safetensors");
        assertThat(hf.config().ropeStyle()).isEqualTo(RopeStyle.HALF_SPLIT);
        int[] prompt = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376};
        float[] a = logits(gguf, pool, prompt);
        float[] b = logits(hf, pool, prompt);
        for (int i = 0; i < a.length; i++) {
          // Same math; only the order of the 8-term attention dot products differs.
          assertThat(b[i]).isCloseTo(a[i], org.assertj.core.data.Offset.offset(1e-4f));
        }
        GenerationResult r =
            new Generator(new Transformer(hf.config(), hf.weights(), pool), hf.tokenizer())
                .generate(new int[] {1}, 48, SamplingParams.GREEDY, List.of(), s -> {});
        assertThat(r.tokens()).containsExactly(SharedModels.STORIES260K_GOLDEN);
      }
    }
  }

  @Test
  void qwen2StyleBiasesAreAppliedAsTheReferenceDoes() throws Exception {
    Path stories = SharedModels.require("stories260K/stories260K.gguf");
    Path tok = SharedModels.require("stories260K/tok512.bin");
    try (Model gguf = ModelLoader.load(stories, Optional.empty());
        ComputePool pool = new ComputePool(2)) {
      LlamaConfig c = gguf.config();
      SplittableRandom r = new SplittableRandom(9);
      float[][][] biases = new float[c.layers()][3][];
      for (float[][] layer : biases) {
        layer[0] = random(r, c.dim());
        layer[1] = random(r, c.kvDim());
        layer[2] = random(r, c.kvDim());
      }
      writeHf(gguf, dir.resolve("qwen"), "qwen2", biases);
      try (Model hf = ModelLoader.load(dir.resolve("qwen"), Optional.of(tok))) {
        assertThat(hf.weights().layers().get(0).qBias()).isNotNull();
        int[] prompt = {1, 403, 407, 261, 378, 432, 383};
        float[] got = logits(hf, pool, prompt);
        double[] expected = new ReferenceLlama(hf.config(), hf.weights()).logits(prompt);
        float[] without = logits(gguf, pool, prompt);
        double maxErr = 0;
        double maxBiasEffect = 0;
        for (int i = 0; i < expected.length; i++) {
          maxErr = Math.max(maxErr, Math.abs(expected[i] - got[i]));
          maxBiasEffect = Math.max(maxBiasEffect, Math.abs(got[i] - without[i]));
        }
        assertThat(maxErr).isLessThan(2e-3);
        // The biases really change the output (the check above is not vacuous).
        assertThat(maxBiasEffect).isGreaterThan(0.05);
      }
    }
  }

  static float[] random(SplittableRandom r, int n) {
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      v[i] = (float) (r.nextGaussian() * 0.5);
    }
    return v;
  }
}
