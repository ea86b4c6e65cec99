package io.kvant.server.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.kvant.api.v1.GenerateChunk;
import io.kvant.api.v1.GenerateRequest;
import io.kvant.api.v1.GenerateResponse;
import io.kvant.api.v1.GetModelStatusRequest;
import io.kvant.api.v1.ModelAdminGrpc;
import io.kvant.api.v1.TokenizeRequest;
import io.opentelemetry.sdk.trace.data.SpanData;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** Metrics, traces, health, admin authentication and graceful shutdown of a real server. */
class OperationsTest {

  static String scrape(int port) throws Exception {
    HttpResponse<String> r =
        HttpClient.newHttpClient()
            .send(
                HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/metrics")).build(),
                HttpResponse.BodyHandlers.ofString());
    assertThat(r.statusCode()).isEqualTo(200);
    return r.body();
  }

  /** Sum of a metric's samples whose line matches {@code filter}. */
  static double sum(String text, String metric, String filter) {
    double total = 0;
    Matcher m =
        Pattern.compile("(?m)^" + Pattern.quote(metric) + "(\\{[^}]*\\})? ([0-9.eE+-]+)$")
            .matcher(text);
    while (m.find()) {
      String labels = m.group(1) == null ? "" : m.group(1);
      if (labels.contains(filter)) {
        total += Double.parseDouble(m.group(2));
      }
    }
    return total;
  }

  @Test
  void metricsMatchTheRequestsSentAndEachRequestHasASpan() throws Exception {
    try (TestServer t = TestServer.builder().start()) {
      int completion = 0;
      int prompt = 0;
      for (int i = 0; i < 5; i++) {
        GenerateResponse r =
            t.blocking()
                .generate(
                    GenerateRequest.newBuilder()
                        .setText("The dog " + i)
                        .setMaxTokens(10 + i)
                        .setRequestId("req-" + i)
                        .build());
        completion += r.getUsage().getCompletionTokens();
        prompt += r.getUsage().getPromptTokens();
        assertThat(r.getRequestId()).isEqualTo("req-" + i);
      }
      String text = scrape(t.server.metricsPort());
      assertThat(text)
          .contains("gen_ai_server_time_to_first_token_seconds_bucket")
          .contains("gen_ai_server_time_per_output_token_seconds_bucket")
          .contains("kvant_kv_cache_usage")
          .contains("kvant_prefix_cache_hit_ratio")
          .contains("kvant_scheduler_queue_size")
          .contains("kvant_scheduler_running")
          .contains("kvant_scheduler_preemptions_total")
          .contains("kvant_model_version");
      // The warm-up request runs inside the engine, not through the API, so it is not counted.
      assertThat(sum(text, "gen_ai_server_request_duration_seconds_count", "")).isEqualTo(5);
      assertThat(sum(text, "gen_ai_server_time_to_first_token_seconds_count", "")).isEqualTo(5);
      assertThat(sum(text, "gen_ai_client_token_usage_sum", "gen_ai_token_type=\"output\""))
          .isEqualTo(completion);
      assertThat(sum(text, "gen_ai_client_token_usage_sum", "gen_ai_token_type=\"input\""))
          .isEqualTo(prompt);
      assertThat(
              sum(text, "kvant_requests_total", "finish_reasons=\"length\"")
                  + sum(text, "kvant_requests_total", "finish_reasons=\"stop\""))
          .isEqualTo(5);

      List<SpanData> spans = t.spans.getFinishedSpanItems();
      assertThat(spans).hasSize(5);
      for (SpanData s : spans) {
        assertThat(s.getName()).isEqualTo("kvant.generate");
        assertThat(s.getEvents())
            .extracting(e -> e.getName())
            .contains("queued", "first_token", "finished");
        assertThat(s.getAttributes().asMap().toString()).contains("req-");
      }
    }
  }

  @Test
  void quantizeAtLoadServesTheRecipeAsItsOwnVersionWithQuantizedKv() throws Exception {
    try (TestServer t = TestServer.builder().weights("w8").kv("int8").start()) {
      var models = t.blocking().listModels(io.kvant.api.v1.ListModelsRequest.getDefaultInstance());
      assertThat(models.getModels(0).getWeights()).isEqualTo("w8");
      assertThat(models.getModels(0).getKvCacheType()).isEqualTo("int8");
      assertThat(models.getModels(0).getServingVersion()).endsWith("+w8");
      GenerateResponse r =
          t.blocking()
              .generate(
                  GenerateRequest.newBuilder()
                      .setText("Once upon a time")
                      .setMaxTokens(16)
                      .build());
      assertThat(r.getUsage().getCompletionTokens()).isEqualTo(16);
      assertThat(r.getModelVersion()).endsWith("+w8");
    }
  }

  @Test
  void centeredFp8KvIsCalibratedAtLoadAndServesTheSameGreedyTextAsF32Kv() throws Exception {
    GenerateRequest req =
        GenerateRequest.newBuilder().setText("Once upon a time").setMaxTokens(24).build();
    String f32;
    try (TestServer t = TestServer.builder().start()) {
      f32 = t.blocking().generate(req).getText();
    }
    try (TestServer t = TestServer.builder().kv("fp8").kvEncoding("centered-qmse").start()) {
      var models = t.blocking().listModels(io.kvant.api.v1.ListModelsRequest.getDefaultInstance());
      assertThat(models.getModels(0).getKvCacheType()).isEqualTo("fp8");
      GenerateResponse r = t.blocking().generate(req);
      assertThat(r.getUsage().getCompletionTokens()).isEqualTo(24);
      // Greedy on stories260K (8-wide heads, where FP8 KV is weakest): the F32 KV's text. This
      // shows the calibrated store serving correctly; how much better it is than per-token-mse is
      // eval's to measure (perf/RESULTS.md): per-token FP8 gives this same short text too.
      assertThat(r.getText()).isEqualTo(f32);
    }
  }

  @Test
  void adminCallsNeedTheToken() throws Exception {
    try (TestServer t = TestServer.builder().start()) {
      GetModelStatusRequest req = GetModelStatusRequest.getDefaultInstance();
      StatusRuntimeException none =
          catchThrowableOfType(
              StatusRuntimeException.class,
              () -> ModelAdminGrpc.newBlockingStub(t.channel).getModelStatus(req));
      assertThat(none.getStatus().getCode()).isEqualTo(Status.Code.UNAUTHENTICATED);
      StatusRuntimeException wrong =
          catchThrowableOfType(
              StatusRuntimeException.class, () -> t.admin("not-the-token").getModelStatus(req));
      assertThat(wrong.getStatus().getCode()).isEqualTo(Status.Code.UNAUTHENTICATED);
      assertThat(t.admin(TestServer.ADMIN_TOKEN).getModelStatus(req).getServingVersion())
          .isNotEmpty();
    }
  }

  @Test
  void generationCanRequireATokenToo() throws Exception {
    try (TestServer t = TestServer.builder().generationToken("gen-secret").start()) {
      TokenizeRequest req = TokenizeRequest.newBuilder().setText("hi").build();
      StatusRuntimeException e =
          catchThrowableOfType(StatusRuntimeException.class, () -> t.blocking().tokenize(req));
      assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAUTHENTICATED);
      assertThat(
              t.blocking()
                  .withCallCredentials(TestServer.bearer("gen-secret"))
                  .tokenize(req)
                  .getTokenIdsCount())
          .isPositive();
    }
  }

  @Test
  void shutdownTurnsHealthNotServingRefusesNewRequestsAndLetsInFlightOnesFinish() throws Exception {
    // The in-flight request (1500 tokens) must finish inside the drain timeout even on a shared,
    // loaded machine: 10 s was not always enough.
    TestServer t = TestServer.builder().drain(Duration.ofSeconds(90)).start();
    HealthGrpc.HealthBlockingStub health = HealthGrpc.newBlockingStub(t.channel);
    assertThat(health.check(HealthCheckRequest.getDefaultInstance()).getStatus())
        .isEqualTo(ServingStatus.SERVING);
    assertThat(
            health.check(HealthCheckRequest.newBuilder().setService("stories").build()).getStatus())
        .isEqualTo(ServingStatus.SERVING);

    Iterator<GenerateChunk> inFlight =
        t.blocking()
            .generateStream(
                GenerateRequest.newBuilder()
                    .setText("Once upon a time")
                    .setMaxTokens(1500)
                    .setReturnTokenIds(true)
                    .build());
    int seen = inFlight.next().getTokenIdsCount();
    CompletableFuture<Void> shutdown = CompletableFuture.runAsync(t.server::shutdownGracefully);
    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    ServingStatus status = ServingStatus.SERVING;
    while (System.nanoTime() < until && status == ServingStatus.SERVING) {
      status = health.check(HealthCheckRequest.getDefaultInstance()).getStatus();
    }
    assertThat(status).isEqualTo(ServingStatus.NOT_SERVING);
    StatusRuntimeException refused =
        catchThrowableOfType(
            StatusRuntimeException.class,
            () ->
                t.blocking()
                    .generate(
                        GenerateRequest.newBuilder().setText("late").setMaxTokens(2).build()));
    assertThat(refused.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE);
    GenerateChunk last = null;
    while (inFlight.hasNext()) {
      last = inFlight.next();
      seen += last.getTokenIdsCount();
    }
    assertThat(last.getUsage().getCompletionTokens()).isEqualTo(seen);
    shutdown.get(100, TimeUnit.SECONDS);
    t.channel.shutdownNow();
  }
}
