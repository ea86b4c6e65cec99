package io.kvant.engine.generate;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.engine.forward.Transformer;
import io.kvant.engine.model.Model;
import io.kvant.engine.model.ModelLoader;
import io.kvant.engine.sample.SamplingParams;
import io.kvant.engine.tensor.ComputePool;
import io.kvant.engine.testing.SharedModels;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Greedy generation from BOS on the real stories260K weights reproduces the 48 golden token ids and
 * the text llama2.c prints (both from ../shared/models/stories260K/SOURCE.md), from the GGUF file
 * and from the llama2.c checkpoint + tok512.bin.
 */
class Stories260KGoldenTest {
  static final int[] GOLDEN = SharedModels.STORIES260K_GOLDEN;

  static final String LLAMA2C_TEXT_START =
      "Once upon a time, there was a little girl named Lily. She loved to play outside in the"
          + " park. One day, she saw a big, red ball.";

  @ParameterizedTest
  @ValueSource(strings = {"stories260K/stories260K.gguf", "stories260K/stories260K.bin"})
  void greedyFromBosReproducesTheGoldenIdsAndText(String file) throws Exception {
    Path path = SharedModels.require(file);
    try (Model model = ModelLoader.load(path, Optional.empty());
        ComputePool pool = new ComputePool(2)) {
      Generator g =
          new Generator(new Transformer(model.config(), model.weights(), pool), model.tokenizer());
      GenerationResult r =
          g.generate(new int[] {1}, GOLDEN.length, SamplingParams.GREEDY, List.of(), s -> {});
      assertThat(r.tokens()).as(Arrays.toString(r.tokens())).containsExactly(GOLDEN);
      assertThat(r.finishReason()).isEqualTo(FinishReason.LENGTH);
      assertThat(r.text()).startsWith(LLAMA2C_TEXT_START);
    }
  }
}
