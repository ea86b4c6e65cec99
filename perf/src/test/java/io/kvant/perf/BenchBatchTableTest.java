package io.kvant.perf;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.engine.testing.SharedModels;
import java.util.List;
import org.junit.jupiter.api.Test;

/** {@code bench batch} on the CPU: one table row per level, each relative to one sequence. */
class BenchBatchTableTest {
  @Test
  void levelsBeforeAnyOneSequenceLevelPrintADashNotNaN() {
    BenchCapture bench = new BenchCapture();
    int rc =
        bench.run(
            "batch",
            "--model",
            SharedModels.require("stories260K/stories260K.gguf").toString(),
            "--concurrency",
            "2,1,2",
            "--tokens",
            "3",
            "--warmup",
            "1",
            "--threads",
            "1");
    assertThat(rc).as(bench.err()).isZero();
    List<String[]> rows =
        bench.out().lines().filter(l -> l.matches("^[0-9]+ .*")).map(l -> l.split(" +")).toList();
    assertThat(rows).hasSize(3);
    assertThat(rows.get(0)[0]).isEqualTo("2");
    assertThat(rows.get(0)[3]).isEqualTo("-");
    assertThat(rows.get(1)[3]).isEqualTo("1.00");
    double ratio = Double.parseDouble(rows.get(2)[3]);
    double expected = Double.parseDouble(rows.get(2)[1]) / Double.parseDouble(rows.get(1)[1]);
    assertThat(ratio).isCloseTo(expected, org.assertj.core.data.Offset.offset(0.006));
    assertThat(bench.out()).doesNotContain("NaN");
  }
}
