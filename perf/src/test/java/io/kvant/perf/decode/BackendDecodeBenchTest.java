package io.kvant.perf.decode;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.engine.forward.CpuBackend;
import io.kvant.engine.model.Model;
import io.kvant.engine.model.ModelLoader;
import io.kvant.engine.tensor.ComputePool;
import io.kvant.engine.testing.SharedModels;
import java.util.Arrays;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The backend decode benchmark decodes what the model generates (on the CPU backend here). */
class BackendDecodeBenchTest {
  @ParameterizedTest
  @ValueSource(ints = {1, 3})
  void everySequenceDecodesTheGoldenIdsOfStories260K(int sequences) throws Exception {
    int[] golden = SharedModels.STORIES260K_GOLDEN;
    try (Model m =
            ModelLoader.load(
                SharedModels.require("stories260K/stories260K.gguf"), Optional.empty());
        ComputePool pool = new ComputePool(2);
        CpuBackend backend = new CpuBackend(pool)) {
      long[] clock = {0};
      BackendDecodeBench.Result r =
          BackendDecodeBench.run(
              m, backend, sequences, golden.length - 8, 8, () -> clock[0] += 1_000_000);
      assertThat(r.ids()).as(Arrays.toString(r.ids())).containsExactly(golden);
      // the injected clock advances 1 ms per reading: two readings bracket the timed steps
      assertThat(r.seconds()).isEqualTo(1e-3);
      assertThat(r.tokensPerSecond()).isEqualTo(sequences * (golden.length - 8) / 1e-3);
    }
  }

  @Test
  void stepsBeyondTheContextAreRefusedNamingTheOption() throws Exception {
    try (Model m =
            ModelLoader.load(
                SharedModels.require("stories260K/stories260K.gguf"), Optional.empty());
        ComputePool pool = new ComputePool(1);
        CpuBackend backend = new CpuBackend(pool)) {
      int context = m.config().contextLength();
      org.assertj.core.api.Assertions.assertThatThrownBy(
              () -> BackendDecodeBench.run(m, backend, 1, context, 8, System::nanoTime))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("--tokens");
    }
  }
}
