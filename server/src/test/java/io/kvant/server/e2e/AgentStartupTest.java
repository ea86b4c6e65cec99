package io.kvant.server.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kvant.api.v1.ModelEvent;
import io.kvant.engine.model.Weight;
import io.kvant.reload.Publisher;
import io.kvant.reload.bucket.FileBucket;
import io.kvant.server.config.AgentConfig;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Optional;
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 17, items 1, 2 and 5 through a real server: what the reload agent is pointed at is checked
 * at start, and a version polling skips is an event, a metric and a log line.
 */
class AgentStartupTest {
  @TempDir Path tmp;

  static AgentConfig agent(Path staging) {
    return agent(staging, true);
  }

  static AgentConfig agent(Path staging, boolean autoSwap) {
    AgentConfig d = AgentConfig.defaults();
    return new AgentConfig(
        Optional.empty(),
        Optional.empty(),
        Duration.ofSeconds(1),
        staging,
        Optional.empty(),
        Duration.ofSeconds(60),
        autoSwap,
        io.kvant.reload.SwapMode.DRAIN,
        d.gateMinTop1(),
        d.gateMaxKl(),
        d.rollbackErrorRate(),
        d.rollbackMinRequests(),
        d.s3());
  }

  /** Publishes the model's own weights, scaled a little, as {@code version} of "stories". */
  private void publish(Path bucket, String version, float scale) throws Exception {
    try (io.kvant.engine.model.Model m =
        io.kvant.engine.model.ModelLoader.load(TestServer.stories(), Optional.empty())) {
      java.util.Map<String, Weight> t = new java.util.LinkedHashMap<>(Publisher.tensorsOf(m));
      String q = "blk.0.attn_q.weight";
      float[] v = t.get(q).values().clone();
      for (int i = 0; i < v.length; i++) {
        v[i] *= scale;
      }
      io.kvant.engine.tensor.Tensor like = m.weights().layers().get(0).wq();
      byte[] b = new byte[v.length * 4];
      java.nio.ByteBuffer.wrap(b).order(java.nio.ByteOrder.LITTLE_ENDIAN).asFloatBuffer().put(v);
      t.put(
          q,
          new Weight.Matrix(
              io.kvant.engine.tensor.Tensors.of(
                  io.kvant.engine.tensor.DType.F32,
                  like.rows(),
                  like.cols(),
                  java.lang.foreign.MemorySegment.ofArray(b))));
      Path dir = Files.createDirectories(tmp.resolve("src-" + version));
      Publisher.writeTensors(dir.resolve("model.safetensors"), t);
      Publisher.unverified(new FileBucket(bucket), java.time.Clock.systemUTC())
          .publish("stories", version, Optional.empty(), "none", "test", dir, Optional.empty());
      Thread.sleep(5); // distinct manifest times
    }
  }

  private static String serving(TestServer t) {
    return t.server.models().find("stories").orElseThrow().serving().id();
  }

  @Test
  void aRestartedServerComesBackOnTheVersionItCommitted() throws Exception {
    Path bucket = Files.createDirectories(tmp.resolve("bucket"));
    Path staging = tmp.resolve("staging");
    publish(bucket, "v1", 1.01f);
    // First life: no record yet, so the bucket's current version is loaded before SERVING.
    TestServer first =
        TestServer.builder().bucket(bucket.toUri().toString(), agent(staging)).start();
    assertThat(serving(first)).isEqualTo("v1");
    first.server.kill();
    first.channel.shutdownNow();
    // While it was down, a newer version appeared; this server does not swap by itself.
    publish(bucket, "v2", 1.02f);
    try (TestServer second =
        TestServer.builder().bucket(bucket.toUri().toString(), agent(staging, false)).start()) {
      // SERVING (start has returned) on the committed version, not on the bundled model.
      assertThat(serving(second)).isEqualTo("v1");
      assertThat(
              io.grpc.health.v1.HealthGrpc.newBlockingStub(second.channel)
                  .check(io.grpc.health.v1.HealthCheckRequest.getDefaultInstance())
                  .getStatus())
          .isEqualTo(io.grpc.health.v1.HealthCheckResponse.ServingStatus.SERVING);
    }
  }

  @Test
  void aMissingBucketFailsTheStartNamingIt() {
    Path missing = tmp.resolve("nonexistent/bucket");
    assertThatThrownBy(
            () ->
                TestServer.builder()
                    .bucket(missing.toUri().toString(), agent(tmp.resolve("staging")))
                    .start()
                    .close())
        .isInstanceOf(IOException.class)
        .hasMessageContaining("nonexistent/bucket")
        .hasMessageContaining("no such folder");
    assertThat(tmp.resolve("nonexistent")).doesNotExist();
  }

  @Test
  void aForeignStagingFolderFailsTheStartAndKeepsItsFiles() throws Exception {
    Path bucket = Files.createDirectories(tmp.resolve("bucket"));
    Path staging = Files.createDirectories(tmp.resolve("x/sub")).getParent();
    Files.writeString(staging.resolve("notes.txt"), "hi");
    assertThatThrownBy(
            () -> TestServer.builder().bucket(bucket.toUri().toString(), agent(staging)).start())
        .isInstanceOf(IOException.class)
        .hasMessageContaining(staging.toString());
    assertThat(staging.resolve("notes.txt")).hasContent("hi");
    assertThat(staging.resolve("sub")).isDirectory();
  }

  @Test
  void aGarbageNewestManifestIsAnEventAMetricAndALogLine() throws Exception {
    Path bucket = Files.createDirectories(tmp.resolve("bucket"));
    Path v9 = Files.createDirectories(bucket.resolve("stories/versions/v9"));
    Files.writeString(v9.resolve("manifest.json"), "{\"format\": garbage");
    List<String> logs = Collections.synchronizedList(new ArrayList<>());
    Handler capture =
        new Handler() {
          @Override
          public void publish(LogRecord r) {
            logs.add(new java.util.logging.SimpleFormatter().formatMessage(r));
          }

          @Override
          public void flush() {}

          @Override
          public void close() {}
        };
    Logger serverLog = Logger.getLogger("io.kvant.server");
    serverLog.addHandler(capture);
    try (TestServer t =
        TestServer.builder()
            .bucket(bucket.toUri().toString(), agent(tmp.resolve("staging")))
            .start()) {
      List<ModelEvent> events = Collections.synchronizedList(new ArrayList<>());
      t.server.events().watch(events::add);
      long until = System.nanoTime() + Duration.ofSeconds(30).toNanos();
      while (events.stream().noneMatch(e -> e.getKind() == ModelEvent.Kind.REJECTED)
          && System.nanoTime() < until) {
        Thread.sleep(50);
      }
      ModelEvent e =
          events.stream()
              .filter(x -> x.getKind() == ModelEvent.Kind.REJECTED)
              .findFirst()
              .orElseThrow();
      assertThat(e.getVersion()).isEqualTo("v9");
      assertThat(e.getAttributesMap()).containsEntry("reason", "bad_manifest");
      assertThat(e.getMessage()).contains("stories/versions/v9/manifest.json");
      String metrics = OperationsTest.scrape(t.server.metricsPort());
      assertThat(
              OperationsTest.sum(
                  metrics, "kvant_swap_events_total", "kvant_swap_reason=\"bad_manifest\""))
          .isEqualTo(1.0);
      assertThat(logs)
          .anySatisfy(
              l -> assertThat(l).contains("kind=REJECTED", "version=v9", "reason=bad_manifest"));
      assertThat(t.server.models().find("stories").orElseThrow().serving().id())
          .doesNotContain("v9");
    } finally {
      serverLog.removeHandler(capture);
    }
  }
}
