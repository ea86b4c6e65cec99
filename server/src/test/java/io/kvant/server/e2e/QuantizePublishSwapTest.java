package io.kvant.server.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.api.v1.GenerateChunk;
import io.kvant.api.v1.GenerateRequest;
import io.kvant.engine.model.Model;
import io.kvant.engine.tensor.DType;
import io.kvant.engine.tensor.Tensor;
import io.kvant.quant.artifact.Manifest;
import io.kvant.quant.artifact.ModelOpener;
import io.kvant.quant.encoding.AimetEncodings;
import io.kvant.quant.encoding.TensorEncoding;
import io.kvant.quant.quantize.Method;
import io.kvant.quant.quantize.QuantSpec;
import io.kvant.quant.quantize.WeightQuantizer;
import io.kvant.server.cli.Main;
import io.kvant.server.config.AgentConfig;
import io.kvant.server.model.ServedModel;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The platform team's pipeline through the real CLI and a real server on 127.0.0.1: {@code kvant
 * quantize} → {@code kvant agent publish} (which verifies first) → the server's agent swaps the
 * version in under load → {@code kvant agent status} shows it; then a delta with new encodings
 * only; then a version the server would refuse, refused at publish with the server's reason.
 */
class QuantizePublishSwapTest {
  static final String Q0 = "blk.0.attn_q.weight";
  static final int CLIENTS = 3;

  @TempDir Path tmp;

  record Run(int code, String out, String err) {}

  static Run kvant(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code =
        Main.standard(
                new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8))
            .run(args);
    return new Run(
        code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }

  // Quantize, three publishes (each runs the verification pipeline) and two swaps under load: about
  // a minute on a quiet 2-core machine, more on a shared one.
  @Test
  @Timeout(300)
  void quantizedFolderAndEncodingsDeltaAreServedUnderLoadAndShownByStatus() throws Exception {
    String stories = TestServer.stories().toString();
    Path quantized = tmp.resolve("q");
    Run q = kvant("quantize", "--model", stories, "--recipe", "w8", "--out", quantized.toString());
    assertThat(q.code()).as(q.err()).isZero();
    assertReadableByAll(quantized);

    // The bucket exists before the server starts (a missing one fails the start: issue 17).
    String bucket =
        Files.createDirectories(tmp.resolve("bucket")).toUri().toString().replaceAll("/$", "");
    Path token = Files.writeString(tmp.resolve("token"), TestServer.ADMIN_TOKEN);
    AgentConfig d = AgentConfig.defaults();
    AgentConfig agent =
        new AgentConfig(
            Optional.empty(),
            Optional.empty(),
            Duration.ofMillis(300),
            tmp.resolve("staging"),
            Optional.empty(),
            Duration.ofSeconds(2),
            true,
            io.kvant.reload.SwapMode.DRAIN,
            d.gateMinTop1(),
            d.gateMaxKl(),
            d.rollbackErrorRate(),
            d.rollbackMinRequests(),
            d.s3());
    try (TestServer server = TestServer.builder().bucket(bucket, agent).start()) {
      ServedModel served = server.server.models().find("stories").orElseThrow();
      AtomicBoolean stop = new AtomicBoolean();
      ConcurrentLinkedQueue<String> errors = new ConcurrentLinkedQueue<>();
      Set<String> versionsSeen = ConcurrentHashMap.newKeySet();
      List<Thread> load = new ArrayList<>();
      long loadDeadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
      for (int c = 0; c < CLIENTS; c++) {
        Thread t =
            new Thread(
                () -> {
                  // Until the test stops it (bounded by the deadline), not a count: a fast publish
                  // could outlast a fixed number of requests before the last swap.
                  while (!stop.get() && System.nanoTime() < loadDeadline) {
                    try {
                      Iterator<GenerateChunk> it =
                          server
                              .blocking()
                              .withDeadlineAfter(60, TimeUnit.SECONDS)
                              .generateStream(
                                  GenerateRequest.newBuilder()
                                      .setText("Once upon a time")
                                      .setMaxTokens(16)
                                      .build());
                      GenerateChunk last = null;
                      while (it.hasNext()) {
                        last = it.next();
                      }
                      versionsSeen.add(last.getModelVersion());
                    } catch (RuntimeException e) {
                      errors.add(e.toString());
                    }
                  }
                },
                "load-" + c);
        t.start();
        load.add(t);
      }
      try {
        // The quantize folder, published: verified against the served model, then uploaded.
        Run p =
            kvant(
                "agent",
                "publish",
                "--model",
                quantized.toString(),
                "--bucket",
                bucket,
                "--name",
                "stories",
                "--version",
                "q1",
                "--base",
                stories);
        assertThat(p.code()).as(p.err()).isZero();
        assertThat(p.out()).contains("stories/versions/q1", "0 re-quantized");
        assertReadableByAll(tmp.resolve("bucket/stories/versions/q1"));
        // Uploaded as quantize wrote it: the same files, byte for byte, and the same tensor list.
        Path uploaded = tmp.resolve("bucket/stories/versions/q1");
        Manifest written = Manifest.read(quantized);
        // quantize's KV statistics travel with the folder (the agent checks, never serves them).
        assertThat(written.file(io.kvant.quant.artifact.KvCalibrationFile.FILE_NAME)).isPresent();
        Manifest published = Manifest.read(uploaded);
        assertThat(published.files()).containsExactlyInAnyOrderElementsOf(written.files());
        assertThat(published.tensors()).containsExactlyInAnyOrderElementsOf(written.tensors());
        for (Manifest.FileEntry f : written.files()) {
          assertThat(Files.mismatch(quantized.resolve(f.path()), uploaded.resolve(f.path())))
              .as(f.path())
              .isEqualTo(-1L);
        }
        assertThat(published.tensors()).anySatisfy(t -> assertThat(t.dtype()).isEqualTo("I8"));
        awaitServing(served, "q1");
        // It serves the quantize folder's own codes.
        try (Model folder = ModelOpener.load(quantized, Optional.empty())) {
          Tensor want = folder.weights().layers().get(0).wq();
          Tensor got = served.serving().model().weights().layers().get(0).wq();
          assertThat(got.dtype()).isEqualTo(DType.I8);
          assertThat(rows(got)).isEqualTo(rows(want));
        }
        Run s1 = kvant("agent", "status", "--target", target(server), "--token-file", "" + token);
        assertThat(s1.code()).as(s1.err()).isZero();
        assertThat(s1.out()).contains("serving q1").containsPattern("q1\\s+SERVING");

        // A delta with new encodings only: attn_q of layer 0 at 4 bits.
        Tensor wq = served.serving().model().weights().layers().get(0).wq();
        float[] values = rows(wq);
        TensorEncoding enc =
            WeightQuantizer.chooseEncoding(
                Q0, values, wq.rows(), wq.cols(), QuantSpec.int4(32, true, Method.MINMAX), null);
        Path delta = Files.createDirectories(tmp.resolve("delta"));
        Files.writeString(delta.resolve("encodings.json"), AimetEncodings.write(Map.of(Q0, enc)));
        Run p2 =
            kvant(
                "agent",
                "publish",
                "--model",
                delta.toString(),
                "--bucket",
                bucket,
                "--name",
                "stories",
                "--version",
                "q2",
                "--parent",
                "q1",
                "--base",
                stories);
        assertThat(p2.code()).as(p2.err()).isZero();
        assertThat(p2.out()).contains("0 changed from q1", "delta of q1");
        awaitServing(served, "q2");
        assertThat(served.serving().model().weights().layers().get(0).wq().dtype())
            .isEqualTo(DType.I4);
        Run s2 = kvant("agent", "status", "--target", target(server), "--token-file", "" + token);
        assertThat(s2.out()).contains("serving q2").containsPattern("q2\\s+SERVING.*q1");

        // What a server refuses is refused at publish with the server's reason; nothing uploaded.
        Run bad =
            kvant(
                "agent",
                "publish",
                "--model",
                delta.toString(),
                "--bucket",
                bucket,
                "--name",
                "stories",
                "--version",
                "bad",
                "--parent",
                "q1",
                "--recipe",
                "w4",
                "--base",
                stories);
        assertThat(bad.code()).isEqualTo(1);
        assertThat(bad.err()).contains("REFUSED bad (unknown_recipe)", "'w4' is not known here");
        assertThat(tmp.resolve("bucket/stories/versions/bad")).doesNotExist();
      } finally {
        stop.set(true);
        for (Thread t : load) {
          t.join(60_000);
        }
      }
      assertThat(errors).as("failed requests under load").isEmpty();
      assertThat(versionsSeen).contains("q1", "q2");
    }
  }

  private static void awaitServing(ServedModel served, String version) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (!served.serving().id().equals(version) && System.nanoTime() < deadline) {
      Thread.sleep(50);
    }
    assertThat(served.serving().id()).isEqualTo(version);
    // Let some requests run on it.
    Thread.sleep(1_000);
  }

  /** Model files, manifests and bucket objects are rw-r--r--, not the 0600 of temporary files. */
  private static void assertReadableByAll(Path dir) throws java.io.IOException {
    if (!dir.getFileSystem().supportedFileAttributeViews().contains("posix")) {
      return;
    }
    try (var files = Files.list(dir)) {
      List<Path> all = files.filter(Files::isRegularFile).toList();
      assertThat(all).isNotEmpty();
      for (Path f : all) {
        assertThat(
                java.nio.file.attribute.PosixFilePermissions.toString(
                    Files.getPosixFilePermissions(f)))
            .as(f.toString())
            .isEqualTo("rw-r--r--");
      }
    }
  }

  private static String target(TestServer s) {
    return "127.0.0.1:" + s.server.port();
  }

  private static float[] rows(Tensor t) {
    float[] v = new float[t.rows() * t.cols()];
    for (int r = 0; r < t.rows(); r++) {
      t.dequantizeRow(r, v, r * t.cols());
    }
    return v;
  }
}
