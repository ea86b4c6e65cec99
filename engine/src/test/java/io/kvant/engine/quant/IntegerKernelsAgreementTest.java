package io.kvant.engine.quant;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.engine.forward.MatmulKernels;
import io.kvant.engine.forward.Transformer;
import io.kvant.engine.kv.ContiguousKvStore;
import io.kvant.engine.model.LlamaConfig;
import io.kvant.engine.model.Model;
import io.kvant.engine.model.ModelLoader;
import io.kvant.engine.model.ModelWeights;
import io.kvant.engine.tensor.ComputePool;
import io.kvant.engine.testing.SharedModels;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.Optional;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The integer kernels (int8 activations) against the float reference kernels on the same quantized
 * weights of the three real models: top-1 agreement at least 99.5% outside near ties, perplexity
 * within 0.5%.
 */
class IntegerKernelsAgreementTest {
  static Stream<Arguments> models() {
    return Stream.of(
        Arguments.of(SharedModels.require("stories260K/stories260K.gguf"), "q8_0"),
        Arguments.of(SharedModels.require("stories260K/stories260K.gguf"), "q4_0"),
        Arguments.of(SharedModels.require("tinystories-656k/config.json").getParent(), "q8_0"),
        Arguments.of(SharedModels.require("tinystories-656k/config.json").getParent(), "q4_0"),
        Arguments.of(Path.of("../models/kvant-kjv-7m.gguf"), "q8_0"),
        Arguments.of(Path.of("../models/kvant-kjv-7m.gguf"), "q4_0"));
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("models")
  void integerPathAgreesWithTheFloatPath(Path file, String recipe) throws Exception {
    try (Model model = ModelLoader.load(file, Optional.empty());
        ComputePool pool = new ComputePool(2)) {
      LlamaConfig c = model.config();
      ModelWeights q =
          new Quantizer(Clock.fixed(Instant.EPOCH, ZoneOffset.UTC), "test")
              .run(model, Recipe.resolve(recipe), Calibration.NONE)
              .model()
              .weights();
      int window = Math.min(256, c.contextLength());
      Calibration text =
          Calibration.fromText(Calibration.builtinHeldOutText(), model.tokenizer(), window);
      Evaluator evaluator =
          new Evaluator(
              c,
              pool,
              () -> new ContiguousKvStore(c.layers(), c.kvHeads(), c.headSize(), window, 1));
      Transformer floatPath = new Transformer(c, q, pool, null, MatmulKernels.FLOAT);
      Transformer intPath = new Transformer(c, q, pool, null, MatmulKernels.INTEGER);
      Evaluator.Result r =
          evaluator.compare(
              floatPath,
              intPath,
              text.sequences(),
              () -> new ContiguousKvStore(c.layers(), c.kvHeads(), c.headSize(), window, 1));
      System.out.printf(
          "%s %s: %d positions, top-1 %.4f, excluding near ties %.4f, ppl %.4f -> %.4f, KL %.2e%n",
          file.getFileName(),
          recipe,
          r.positions(),
          r.top1Agreement(),
          r.top1AgreementExcludingTies(),
          r.pplReference(),
          r.pplCandidate(),
          r.meanKl());
      assertThat(r.positions()).isGreaterThan(1000);
      assertThat(r.top1AgreementExcludingTies()).isGreaterThanOrEqualTo(0.995);
      assertThat(Math.abs(r.pplCandidate() / r.pplReference() - 1)).isLessThan(0.005);
    }
  }
}
