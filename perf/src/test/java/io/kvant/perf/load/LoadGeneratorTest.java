package io.kvant.perf.load;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.Status;
import io.kvant.client.KvantClient;
import io.kvant.client.RetryPolicy;
import io.kvant.client.testing.FakeKvantServer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LoadGeneratorTest {
  private static final Duration CHUNK = Duration.ofMillis(3);
  private FakeKvantServer server;
  private KvantClient client;

  @BeforeEach
  void start() {
    server =
        FakeKvantServer.builder()
            .respond("one two three four five six seven eight nine ten")
            .chunkDelay(CHUNK)
            .start();
    client =
        KvantClient.builder()
            .targets(server.target())
            .defaultDeadline(Duration.ofSeconds(10))
            .retryPolicy(RetryPolicy.none())
            .build();
  }

  @AfterEach
  void stop() {
    client.close();
    server.close();
  }

  private static LoadConfig closed(int users, int requests, int warmup) {
    return new LoadConfig(
        false,
        users,
        0,
        1,
        requests,
        Optional.empty(),
        warmup,
        "",
        0f,
        0f,
        0,
        1,
        Duration.ofSeconds(10));
  }

  private static PromptSource prompts(int outputTokens) {
    return PromptSource.synthetic(new LengthDist.Fixed(6), new LengthDist.Fixed(outputTokens), 3);
  }

  @Test
  void closedLoopMeasuresEveryRequestAndExcludesWarmup() throws Exception {
    LoadGenerator gen = new LoadGenerator(client, closed(4, 24, 3), prompts(5), System::nanoTime);
    LoadGenerator.Run run = gen.run(new LoadGenerator.Listener() {});
    assertThat(server.requests()).hasSize(27); // 3 warm-up + 24
    assertThat(run.records()).hasSize(24);
    assertThat(run.records())
        .extracting(RequestRecord::index)
        .containsExactlyElementsOf(java.util.stream.IntStream.range(0, 24).boxed().toList());
    for (RequestRecord r : run.records()) {
      assertThat(r.ok()).isTrue();
      assertThat(r.outputTokens()).isEqualTo(5); // max_tokens 5 of a 10-token answer
      assertThat(r.promptTokens()).isEqualTo(6); // the fake counts words
      assertThat(r.itlMs()).hasSize(4);
      assertThat(r.ttftMs()).isGreaterThanOrEqualTo(CHUNK.toMillis() * 0.9);
      // The fake sleeps before each of the 5 chunks; the client may receive them bunched.
      assertThat(r.e2eMs())
          .isGreaterThanOrEqualTo(Math.max(r.ttftMs(), 5 * CHUNK.toMillis() * 0.9));
      assertThat(r.modelVersion()).isEqualTo("fake-v1");
    }
    Summary s = Summary.of(run.records(), run.durationS(), Slo.NONE);
    assertThat(s.completed()).isEqualTo(24);
    assertThat(s.failed()).isZero();
    assertThat(s.outputTokens()).isEqualTo(120);
    // 4 users, 6 rounds of >= 5 chunks of 3 ms each: at least 90 ms.
    assertThat(run.durationS()).isGreaterThan(0.085);
    assertThat(s.requestThroughput()).isEqualTo(24 / run.durationS());
    assertThat(s.tpot().count()).isEqualTo(24);
    assertThat(s.tpot().mean()).isPositive();
    assertThat(s.itl().count()).isEqualTo(96);
    // No more than 4 requests were ever in flight: each user's requests do not overlap.
    assertThat(maxOverlap(run.records())).isLessThanOrEqualTo(4);
  }

  @Test
  void recordsAndSumsThePromptTokensTheServerTookFromItsPrefixCache() throws Exception {
    try (FakeKvantServer cached =
            FakeKvantServer.builder().respond("a b c d e f").cachedPromptTokens(4).start();
        KvantClient c =
            KvantClient.builder()
                .targets(cached.target())
                .defaultDeadline(Duration.ofSeconds(10))
                .retryPolicy(RetryPolicy.none())
                .build()) {
      LoadGenerator gen = new LoadGenerator(c, closed(2, 6, 0), prompts(3), System::nanoTime);
      LoadGenerator.Run run = gen.run(new LoadGenerator.Listener() {});
      assertThat(run.records()).hasSize(6);
      assertThat(run.records()).extracting(RequestRecord::cachedPromptTokens).containsOnly(4);
      Summary s = Summary.of(run.records(), run.durationS(), Slo.NONE);
      assertThat(s.promptTokens()).isEqualTo(36); // six prompts of six words
      assertThat(s.cachedPromptTokens()).isEqualTo(24);
      java.io.ByteArrayOutputStream text = new java.io.ByteArrayOutputStream();
      ResultTable.print(
          new java.io.PrintStream(text, true, java.nio.charset.StandardCharsets.UTF_8), "t", s);
      assertThat(text.toString(java.nio.charset.StandardCharsets.UTF_8))
          .containsPattern("Input tokens from prefix cache: +24 \\(66\\.7%\\)");
    }
  }

  @Test
  void openLoopSendsAtTheRateAndFailuresAreCounted() throws Exception {
    server.failNext(Status.Code.UNAVAILABLE, 3);
    LoadConfig cfg =
        new LoadConfig(
            true, 0, 100, 1, 30, Optional.empty(), 0, "", 0f, 0f, 0, 5, Duration.ofSeconds(10));
    LoadGenerator.Run run =
        new LoadGenerator(client, cfg, prompts(3), System::nanoTime)
            .run(new LoadGenerator.Listener() {});
    assertThat(run.records()).hasSize(30);
    Summary s = Summary.of(run.records(), run.durationS(), Slo.NONE);
    assertThat(s.failed()).isEqualTo(3);
    assertThat(s.completed()).isEqualTo(27);
    assertThat(run.records().stream().filter(r -> !r.ok()).map(RequestRecord::error))
        .containsOnly("UNAVAILABLE");
    // Arrivals in index order, spread over about 30 / 100 s (Poisson: loose bounds).
    double[] starts = run.records().stream().mapToDouble(RequestRecord::startMs).toArray();
    for (int i = 1; i < starts.length; i++) {
      assertThat(starts[i]).isGreaterThanOrEqualTo(starts[i - 1] - 1);
    }
    assertThat(starts[29]).isBetween(100.0, 900.0);
  }

  @Test
  void durationBoundStopsSending() throws Exception {
    LoadConfig cfg =
        new LoadConfig(
            false,
            2,
            0,
            1,
            0,
            Optional.of(Duration.ofMillis(150)),
            0,
            "",
            0f,
            0f,
            0,
            1,
            Duration.ofSeconds(10));
    LoadGenerator.Run run =
        new LoadGenerator(client, cfg, prompts(2), System::nanoTime)
            .run(new LoadGenerator.Listener() {});
    assertThat(run.records()).isNotEmpty();
    assertThat(run.records()).allSatisfy(r -> assertThat(r.startMs()).isLessThan(150));
    assertThat(run.durationS()).isBetween(0.1, 2.0);
  }

  @Test
  void resultJsonRoundTrips(@TempDir Path dir) throws Exception {
    LoadGenerator.Run run =
        new LoadGenerator(client, closed(2, 6, 0), prompts(4), System::nanoTime)
            .run(new LoadGenerator.Listener() {});
    Summary s = Summary.of(run.records(), run.durationS(), Slo.parse("ttft=1s"));
    BenchResult r =
        new BenchResult(
            "serve",
            server.target(),
            "2026-01-01T00:00:00Z",
            java.util.Map.of("--concurrency", "2"),
            List.of(
                new BenchResult.Point(2, 0, s, run.records()),
                new BenchResult.Point(0, Double.POSITIVE_INFINITY, s, List.of())),
            List.of(new BenchResult.SwapEvent("v2", 10, 20, true, "v2")),
            List.of());
    Path file = dir.resolve("r.json");
    r.write(file);
    BenchResult back = BenchResult.read(file);
    assertThat(back.points()).hasSize(2);
    assertThat(back.points().get(0).summary().completed()).isEqualTo(6);
    assertThat(back.points().get(0).summary().ttft().p99()).isEqualTo(s.ttft().p99());
    assertThat(back.points().get(0).records().get(3).itlMs())
        .containsExactly(run.records().get(3).itlMs());
    assertThat(back.points().get(1).rate()).isInfinite();
    assertThat(back.swaps()).isEqualTo(r.swaps());
    Path again = dir.resolve("again.json");
    back.write(again);
    assertThat(Files.readString(again)).isEqualTo(Files.readString(file));
  }

  private static int maxOverlap(List<RequestRecord> records) {
    int max = 0;
    for (RequestRecord a : records) {
      double t = a.startMs() + 0.5;
      int n = 0;
      for (RequestRecord b : records) {
        if (b.startMs() <= t && t < b.startMs() + b.e2eMs()) {
          n++;
        }
      }
      max = Math.max(max, n);
    }
    return max;
  }
}
