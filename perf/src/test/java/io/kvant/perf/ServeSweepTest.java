package io.kvant.perf;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.client.testing.FakeKvantServer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code kvant bench serve} with a concurrency sweep, over gRPC to a fake server on 127.0.0.1. */
class ServeSweepTest {
  @Test
  void eachLevelOfASweepSendsPromptsNoOtherLevelSent(@TempDir Path dir) {
    try (FakeKvantServer server =
        FakeKvantServer.builder().respond("a b c").chunkDelay(Duration.ofMillis(1)).start()) {
      BenchCapture bench = new BenchCapture();
      int code =
          bench.run(
              "serve",
              "--target",
              server.target(),
              "--concurrency",
              "1,2,2",
              "--requests",
              "6",
              "--warmup",
              "2",
              "--prompt-len",
              "fixed:10",
              "--output-len",
              "fixed:3",
              "--out",
              dir.resolve("r.json").toString());
      assertThat(code).as(bench.err()).isZero();
      List<String> sent = server.requests().stream().map(r -> r.request().getText()).toList();
      assertThat(sent).hasSize(3 * (2 + 6));
      // levels run one after another: warm-up and measured requests of level k are sent
      // [8k, 8k + 8); no prompt of one level appears in another
      Set<String> earlier = new HashSet<>();
      for (int level = 0; level < 3; level++) {
        Set<String> mine = new HashSet<>(sent.subList(8 * level, 8 * level + 8));
        assertThat(mine).as("level %d", level).hasSize(8).noneMatch(earlier::contains);
        earlier.addAll(mine);
      }
    }
  }

  @Test
  void samplingOptionsGoWithEveryRequest(@TempDir Path dir) {
    try (FakeKvantServer server = FakeKvantServer.builder().respond("a b").start()) {
      BenchCapture bench = new BenchCapture();
      int code =
          bench.run(
              "serve",
              "--target",
              server.target(),
              "--requests",
              "3",
              "--temperature",
              "0.7",
              "--top-p",
              "0.9",
              "--top-k",
              "40",
              "--out",
              dir.resolve("r.json").toString());
      assertThat(code).as(bench.err()).isZero();
      assertThat(server.requests())
          .hasSize(3)
          .allSatisfy(
              r -> {
                assertThat(r.request().getSampling().getTemperature()).isEqualTo(0.7f);
                assertThat(r.request().getSampling().getTopP()).isEqualTo(0.9f);
                assertThat(r.request().getSampling().getTopK()).isEqualTo(40);
              });
      assertThat(bench.run("serve", "--target", server.target(), "--top-p", "1.5")).isEqualTo(2);
      assertThat(bench.err()).contains("--top-p must be in [0, 1], got 1.5");
    }
  }
}
