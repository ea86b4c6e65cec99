package io.kvant.perf.synth;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kvant.engine.format.gguf.GgufFile;
import io.kvant.engine.format.gguf.GgufReader;
import io.kvant.engine.forward.Transformer;
import io.kvant.engine.generate.GenerationResult;
import io.kvant.engine.generate.Generator;
import io.kvant.engine.model.Model;
import io.kvant.engine.model.ModelLoader;
import io.kvant.engine.sample.SamplingParams;
import io.kvant.engine.tensor.ComputePool;
import io.kvant.engine.tensor.DType;
import io.kvant.perf.decode.DecodeBench;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class SynthModelWriterTest {
  @TempDir Path dir;

  private static final ModelShape TINY =
      new ModelShape("t", 64, 2, 4, 2, 96, 300, 128, 10000f, true);

  /** K-quant rows are whole 256-value super-blocks. */
  static final ModelShape TINY_K = new ModelShape("k", 256, 2, 4, 2, 512, 300, 128, 10000f, true);

  static ModelShape tinyFor(WeightType type) {
    return type.ggml().blockSize() > 32 ? TINY_K : TINY;
  }

  @ParameterizedTest
  @EnumSource(WeightType.class)
  void tinyModelLoadsInKvantAndGenerates(WeightType type) throws Exception {
    Path file = dir.resolve("tiny-" + type + ".gguf");
    ModelShape shape = tinyFor(type);
    SynthModelWriter w = new SynthModelWriter(shape, type, 7, 2);
    w.write(file, (done, total) -> {});
    assertThat(Files.size(file)).isEqualTo(w.fileSize());
    try (Model m = ModelLoader.load(file, Optional.empty())) {
      assertThat(m.config().dim()).isEqualTo(shape.dim());
      assertThat(m.config().layers()).isEqualTo(2);
      assertThat(m.config().heads()).isEqualTo(4);
      assertThat(m.config().kvHeads()).isEqualTo(2);
      assertThat(m.config().hiddenDim()).isEqualTo(shape.hidden());
      assertThat(m.config().vocabSize()).isEqualTo(300);
      assertThat(m.weights().output()).isSameAs(m.weights().embedding()); // tied
      assertThat(m.weights().layers().getFirst().wq().dtype())
          .isEqualTo(DType.valueOf(type.name()));
      assertThat(m.tokenizer().bos()).isEqualTo(1);
      assertThat(m.tokenizer().eos()).isEqualTo(2);
      // Lower-case text round-trips through the synthetic vocabulary.
      int[] ids = m.tokenizer().encode("hello world", true);
      assertThat(ids[0]).isEqualTo(1);
      try (ComputePool pool = new ComputePool(1)) {
        Generator g = new Generator(new Transformer(m.config(), m.weights(), pool), m.tokenizer());
        GenerationResult r = g.generate(ids, 8, SamplingParams.GREEDY, List.of(), s -> {});
        assertThat(r.tokens().length).isBetween(1, 8);
        for (int t : r.tokens()) {
          assertThat(t).isBetween(0, 299);
        }
      }
    }
  }

  @Test
  void weightsAreSeededAndRoughlyNormalWithStd002() throws Exception {
    Path a = dir.resolve("a.gguf");
    Path b = dir.resolve("b.gguf");
    Path c = dir.resolve("c.gguf");
    new SynthModelWriter(TINY, WeightType.F32, 1, 1).write(a, (d, t) -> {});
    new SynthModelWriter(TINY, WeightType.F32, 1, 3).write(b, (d, t) -> {});
    new SynthModelWriter(TINY, WeightType.F32, 2, 1).write(c, (d, t) -> {});
    assertThat(Files.mismatch(a, b)).as("thread count does not change the file").isEqualTo(-1);
    assertThat(Files.mismatch(a, c)).as("the seed does").isNotEqualTo(-1);
    try (Model m = ModelLoader.load(a, Optional.empty())) {
      var wq = m.weights().layers().getFirst().wGate();
      double sum = 0;
      double sq = 0;
      int n = 0;
      for (int r = 0; r < wq.rows(); r++) {
        for (int col = 0; col < wq.cols(); col++) {
          double v = wq.get(r, col);
          sum += v;
          sq += v * v;
          n++;
        }
      }
      double mean = sum / n;
      double std = Math.sqrt(sq / n - mean * mean);
      assertThat(mean).isBetween(-0.002, 0.002);
      assertThat(std).isBetween(0.019, 0.021);
      assertThat(m.weights().layers().getFirst().attnNorm()).containsOnly(1f);
    }
  }

  @Test
  void fileHasLlamaCppKeysAndTensorNames() throws Exception {
    ModelShape untied = new ModelShape("u", 64, 1, 4, 4, 64, 260, 64, 500000f, false);
    Path file = dir.resolve("u.gguf");
    new SynthModelWriter(untied, WeightType.Q4_0, 3, 1).write(file, (d, t) -> {});
    try (GgufFile f = GgufReader.open(file)) {
      assertThat(f.getString("general.architecture")).isEqualTo("llama");
      assertThat(f.getLong("general.alignment")).isEqualTo(32);
      assertThat(f.getLong("general.file_type")).isEqualTo(2);
      assertThat(f.getInt("llama.embedding_length")).isEqualTo(64);
      assertThat(f.getInt("llama.rope.dimension_count")).isEqualTo(16);
      assertThat(f.getFloat("llama.rope.freq_base", 0f)).isEqualTo(500000f);
      assertThat(f.getString("tokenizer.ggml.model")).isEqualTo("llama");
      List<String> tokens = f.getStringArray("tokenizer.ggml.tokens");
      assertThat(tokens).hasSize(260);
      assertThat(tokens.subList(0, 4)).containsExactly("<unk>", "<s>", "</s>", "<0x00>");
      assertThat(tokens.get(258)).isEqualTo("<0xFF>");
      assertThat(f.getIntArray("tokenizer.ggml.token_type")[5]).isEqualTo(6);
      assertThat(f.findTensor("output.weight")).isPresent();
      assertThat(f.tensor("blk.0.ffn_down.weight").dims()).containsExactly(64L, 64L);
      assertThat(f.tensor("blk.0.attn_k.weight").dims()).containsExactly(64L, 64L);
      assertThat(f.tensor("output_norm.weight").dims()).containsExactly(64L);
    }
  }

  @Test
  void realShapesHaveTheirPublishedSizes() {
    ModelShape smol = ModelShape.named("smollm2-135m");
    assertThat(smol.parameterCount()).isBetween(134_000_000L, 135_000_000L);
    ModelShape llama1b = ModelShape.named("llama-3.2-1b");
    assertThat(llama1b.parameterCount()).isBetween(1_230_000_000L, 1_240_000_000L);
    ModelShape llama8b = ModelShape.named("Llama-3-8B");
    assertThat(llama8b.parameterCount()).isBetween(8_000_000_000L, 8_040_000_000L);
    assertThat(new SynthModelWriter(llama8b, WeightType.Q4_0, 1, 1).fileSize())
        .isBetween(4_500_000_000L, 4_700_000_000L);
    assertThatThrownBy(() -> ModelShape.named("gpt-5")).hasMessageContaining("known");
  }

  @Test
  void decodeBenchCountsStreamedBytes() throws Exception {
    Path file = dir.resolve("d.gguf");
    new SynthModelWriter(TINY, WeightType.Q8_0, 5, 1).write(file, (d, t) -> {});
    try (Model m = ModelLoader.load(file, Optional.empty())) {
      DecodeBench.Result r = DecodeBench.run(m, 4, 1, 1, System::nanoTime);
      assertThat(r.tokens()).isEqualTo(4);
      assertThat(r.bytesPerStep()).isEqualTo(m.weights().matrixBytes()); // tied: head read in full
      assertThat(r.tokensPerSecond()).isPositive();
      assertThat(r.boundTokensPerSecond(10)).isEqualTo(10e9 / r.bytesPerStep());
    }
  }
}
