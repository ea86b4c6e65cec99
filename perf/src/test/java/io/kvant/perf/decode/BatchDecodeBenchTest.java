package io.kvant.perf.decode;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kvant.engine.forward.Transformer;
import io.kvant.engine.model.Model;
import io.kvant.engine.model.ModelLoader;
import io.kvant.engine.tensor.ComputePool;
import io.kvant.engine.testing.SharedModels;
import java.util.Optional;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** `bench batch`'s levels, all on one transformer. */
class BatchDecodeBenchTest {
  static Model model;
  static ComputePool pool;
  static Transformer t;

  @BeforeAll
  static void load() throws Exception {
    model =
        ModelLoader.load(SharedModels.require("stories260K/stories260K.gguf"), Optional.empty());
    pool = new ComputePool(2);
    t = new Transformer(model.config(), model.weights(), pool);
  }

  @AfterAll
  static void close() throws Exception {
    pool.close();
    model.close();
  }

  @Test
  void levelsShareOneTransformerAndTimeOnlyTheStepsAfterTheWarmUp() {
    for (int n : new int[] {1, 3, 1}) {
      // the injected clock advances 2 ms per reading: two readings bracket the timed steps
      long[] clock = {0};
      BatchDecodeBench.Result r =
          BatchDecodeBench.run(
              t, BatchDecodeBench.bos(model), n, 10, 4, BenchKv.PAGED, () -> clock[0] += 2_000_000);
      assertThat(clock[0]).isEqualTo(4_000_000);
      assertThat(r.seconds()).isEqualTo(2e-3);
      assertThat(r.tokensPerSecond()).isEqualTo(n * 10 / 2e-3);
      assertThat(r.msPerStep()).isEqualTo(0.2);
    }
  }

  @Test
  void aLevelOnTheContiguousStoreTimesItsStepsTheSameWay() {
    long[] clock = {0};
    BatchDecodeBench.Result r =
        BatchDecodeBench.run(
            t,
            BatchDecodeBench.bos(model),
            2,
            8,
            2,
            BenchKv.CONTIGUOUS,
            () -> clock[0] += 1_000_000);
    assertThat(r.concurrency()).isEqualTo(2);
    assertThat(r.steps()).isEqualTo(8);
    assertThat(r.seconds()).isEqualTo(1e-3);
  }

  @Test
  void badLevelsAreRefusedNamingTheOption() {
    int context = model.config().contextLength();
    assertThatThrownBy(() -> BatchDecodeBench.run(t, 1, 0, 4, 1, BenchKv.PAGED, System::nanoTime))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("--concurrency");
    assertThatThrownBy(
            () -> BatchDecodeBench.run(t, 1, 1, context, 1, BenchKv.PAGED, System::nanoTime))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("--tokens");
  }
}
