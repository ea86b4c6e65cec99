package io.kvant.perf.decode;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kvant.engine.forward.MatmulKernels;
import io.kvant.engine.forward.Transformer;
import io.kvant.engine.model.Model;
import io.kvant.engine.model.ModelLoader;
import io.kvant.engine.tensor.ComputePool;
import io.kvant.engine.testing.SharedModels;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** `bench batch`'s levels, each on one shared transformer or on one of its own. */
class BatchDecodeBenchTest {
  @Test
  void levelsShareOneTransformerAndTimeOnlyTheStepsAfterTheWarmUp() throws Exception {
    try (Model m =
            ModelLoader.load(
                SharedModels.require("stories260K/stories260K.gguf"), Optional.empty());
        ComputePool pool = new ComputePool(2)) {
      Transformer t = new Transformer(m.config(), m.weights(), pool);
      for (int n : new int[] {1, 3, 1}) {
        // the injected clock advances 2 ms per reading: two readings bracket the timed steps
        long[] clock = {0};
        BatchDecodeBench.Result r =
            BatchDecodeBench.run(
                t, BatchDecodeBench.bos(m), n, 10, 4, BenchKv.PAGED, () -> clock[0] += 2_000_000);
        assertThat(clock[0]).isEqualTo(4_000_000);
        assertThat(r.seconds()).isEqualTo(2e-3);
        assertThat(r.tokensPerSecond()).isEqualTo(n * 10 / 2e-3);
        assertThat(r.msPerStep()).isEqualTo(0.2);
      }
    }
  }

  @Test
  void aLevelOnATransformerOfItsOwnTimesItsStepsTheSameWay() throws Exception {
    try (Model m =
        ModelLoader.load(SharedModels.require("stories260K/stories260K.gguf"), Optional.empty())) {
      long[] clock = {0};
      BatchDecodeBench.Result r =
          BatchDecodeBench.run(
              m, 2, 8, 2, 1, MatmulKernels.FLOAT, BenchKv.CONTIGUOUS, () -> clock[0] += 1_000_000);
      assertThat(r.concurrency()).isEqualTo(2);
      assertThat(r.steps()).isEqualTo(8);
      assertThat(r.seconds()).isEqualTo(1e-3);
    }
  }

  @Test
  void badLevelsAreRefusedNamingTheOption() throws Exception {
    try (Model m =
            ModelLoader.load(
                SharedModels.require("stories260K/stories260K.gguf"), Optional.empty());
        ComputePool pool = new ComputePool(1)) {
      Transformer t = new Transformer(m.config(), m.weights(), pool);
      int context = m.config().contextLength();
      assertThatThrownBy(() -> BatchDecodeBench.run(t, 1, 0, 4, 1, BenchKv.PAGED, System::nanoTime))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("--concurrency");
      assertThatThrownBy(
              () -> BatchDecodeBench.run(t, 1, 1, context, 1, BenchKv.PAGED, System::nanoTime))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("--tokens");
    }
  }
}
