package io.kvant.perf.decode;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kvant.engine.forward.MatmulKernels;
import io.kvant.engine.model.Model;
import io.kvant.engine.model.ModelLoader;
import io.kvant.engine.testing.SharedModels;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** The prefill benchmark times only its timed repeats and refuses prompts beyond the context. */
class PrefillBenchTest {
  @Test
  void timesTheRepeatsAfterTheWarmUp() throws Exception {
    try (Model m =
        ModelLoader.load(SharedModels.require("stories260K/stories260K.gguf"), Optional.empty())) {
      long[] clock = {0};
      // 20 tokens in chunks of 8 (8, 8, 4); the injected clock advances 1 ms per reading, two
      // readings per prefill, so each of the three timed prefills takes 1 ms.
      PrefillBench.Result r =
          PrefillBench.run(m, 20, 8, 3, 1, 2, MatmulKernels.INTEGER, () -> clock[0] += 1_000_000);
      assertThat(r.seconds()).isEqualTo(3e-3, org.assertj.core.data.Offset.offset(1e-12));
      assertThat(r.tokensPerSecond())
          .isCloseTo(60 / 3e-3, org.assertj.core.data.Offset.offset(1e-6));
      assertThat(clock[0]).isEqualTo(8_000_000);
    }
  }

  @Test
  void promptsBeyondTheContextAreRefusedNamingTheOption() throws Exception {
    try (Model m =
        ModelLoader.load(SharedModels.require("stories260K/stories260K.gguf"), Optional.empty())) {
      int context = m.config().contextLength();
      assertThatThrownBy(
              () ->
                  PrefillBench.run(
                      m, context + 1, 8, 1, 0, 1, MatmulKernels.FLOAT, System::nanoTime))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("--prompt");
    }
  }
}
