package io.kvant.server.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kvant.api.v1.GenerateRequest;
import io.kvant.engine.format.safetensors.SafetensorsDtype;
import io.kvant.engine.format.safetensors.SafetensorsWriter;
import io.kvant.quant.artifact.Digests;
import io.kvant.quant.artifact.KvCalibrationFile;
import io.kvant.quant.artifact.Manifest;
import io.kvant.server.e2e.QuantizePublishSwapTest.Run;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code kvant quantize} writes {@code kv_calibration.safetensors} and {@code serve} on that folder
 * uses it: FP8 KV on the CPU defaults to centered-qmse with the folder's statistics (no pass at
 * load), the same greedy text as an explicit {@code --kv-encoding centered-qmse} and as F32 KV; a
 * folder without the file, and a GGUF, keep per-token-mse; a bad file fails the start naming it.
 */
class KvCalibrationServeTest {
  static final GenerateRequest REQ =
      GenerateRequest.newBuilder().setText("Once upon a time").setMaxTokens(24).build();

  @TempDir Path tmp;

  private final List<String> logs = Collections.synchronizedList(new ArrayList<>());
  private final Handler capture =
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

  // Held: java.util.logging keeps loggers weakly, and a collected one drops its handlers.
  private final Logger serverLog = Logger.getLogger("io.kvant.server");

  @BeforeEach
  void listen() {
    serverLog.addHandler(capture);
  }

  @AfterEach
  void stopListening() {
    serverLog.removeHandler(capture);
  }

  private Path quantize(String... extra) {
    return quantizeInto(tmp.resolve("q" + extra.length), extra);
  }

  private Path quantizeInto(Path out, String... extra) {
    List<String> args =
        new ArrayList<>(
            List.of(
                "quantize",
                "--model",
                TestServer.stories().toString(),
                "--recipe",
                "w8",
                "--out",
                out.toString()));
    args.addAll(List.of(extra));
    Run r = QuantizePublishSwapTest.kvant(args.toArray(String[]::new));
    assertThat(r.code()).as(r.err()).isZero();
    assertThat(r.out().contains("kv calibration: ") && r.out().contains(" ms ("))
        .as(r.out())
        .isEqualTo(extra.length == 0);
    return out;
  }

  private String greedy(TestServer.Builder b) throws Exception {
    try (TestServer t = b.start()) {
      var r = t.blocking().generate(REQ);
      assertThat(r.getUsage().getCompletionTokens()).isEqualTo(24);
      return r.getText();
    }
  }

  private boolean logged(String... parts) {
    synchronized (logs) {
      return logs.stream().anyMatch(l -> List.of(parts).stream().allMatch(l::contains));
    }
  }

  @Test
  @Timeout(240)
  void quantizeWritesTheFileAndServeDefaultsFp8ToCenteredQmseWithIt() throws Exception {
    Path q = quantize();
    Path file = q.resolve(KvCalibrationFile.FILE_NAME);
    assertThat(file).isRegularFile();
    Manifest m = Manifest.read(q);
    assertThat(m.file(KvCalibrationFile.FILE_NAME)).isPresent();
    assertThat(
            m.tensors().stream()
                .filter(t -> t.file().equals(KvCalibrationFile.FILE_NAME))
                .map(Manifest.TensorEntry::name))
        .containsExactlyInAnyOrder(
            "kv.key_amax", "kv.value_amax", "kv.key_mean", "kv.query_moment");

    String f32 = greedy(TestServer.builder().model(q));
    logs.clear();
    String byDefault = greedy(TestServer.builder().model(q).kv("fp8"));
    assertThat(logged("centered-qmse is the FP8_E4M3 default", "kv_calibration.safetensors"))
        .as("%s", logs)
        .isTrue();
    assertThat(logged("encoded centered-qmse")).as("%s", logs).isTrue();
    assertThat(logged("calibrated on the built-in text")).as("no pass at load").isFalse();
    logs.clear();
    String explicit = greedy(TestServer.builder().model(q).kv("fp8").kvEncoding("centered-qmse"));
    assertThat(logged("centered-qmse statistics from kv_calibration.safetensors"))
        .as("%s", logs)
        .isTrue();
    // Greedy on stories260K (8-wide heads, where FP8 KV is weakest): the same text three ways.
    assertThat(byDefault).isEqualTo(explicit).isEqualTo(f32);

    // INT8 keeps kivi with the statistics at hand.
    logs.clear();
    greedy(TestServer.builder().model(q).kv("int8"));
    assertThat(logged("encoded kivi")).as("%s", logs).isTrue();
  }

  @Test
  @Timeout(240)
  void withoutTheFileFp8KeepsPerTokenMse() throws Exception {
    // (A rewrite of a folder that had the file is refused by the CLI since session 17; the
    // writer's removal of stale statistics is QuantizedArtifactRewriteTest's.)
    Path q = quantize("--no-kv-calibration");
    assertThat(q.resolve(KvCalibrationFile.FILE_NAME)).doesNotExist();
    assertThat(Manifest.read(q).file(KvCalibrationFile.FILE_NAME)).isEmpty();
    greedy(TestServer.builder().model(q).kv("fp8"));
    assertThat(logged("encoded per-token-mse")).as("%s", logs).isTrue();
    logs.clear();
    greedy(TestServer.builder().kv("fp8")); // the GGUF: as before
    assertThat(logged("encoded per-token-mse")).as("%s", logs).isTrue();
  }

  @Test
  @Timeout(240)
  void aBadFileFailsTheStartNamingIt() throws Exception {
    Path q = quantize();
    Path file = q.resolve(KvCalibrationFile.FILE_NAME);

    // A changed byte: the manifest's digest no longer matches.
    byte[] b = Files.readAllBytes(file);
    b[b.length - 1] ^= 0x55;
    Files.write(file, b);
    assertThatThrownBy(() -> TestServer.builder().model(q).kv("fp8").start())
        .isInstanceOf(IOException.class)
        .hasMessageContaining("kv_calibration.safetensors");

    // A well-formed file for another geometry, listed with its own digest: the codec refuses it.
    new SafetensorsWriter()
        .metadata(
            KvCalibrationFile.METADATA_KEY,
            "{\"schema\":1,\"rope_theta\":10000.0,\"rope_style\":\"ADJACENT_PAIRS\","
                + "\"calibration_text\":\"t\",\"calibration_tokens\":1}")
        .add(KvCalibrationFile.KEY_AMAX, SafetensorsDtype.F32, new long[] {1, 1, 2}, new byte[8])
        .write(file);
    relist(q, file);
    assertThatThrownBy(() -> TestServer.builder().model(q).kv("fp8").start())
        .isInstanceOf(IOException.class)
        .hasMessageContaining(q.toString())
        .hasMessageContaining("kv_calibration.safetensors: kv.key_amax: shape [1, 1, 2]");
  }

  @Test
  @Timeout(240)
  void evalUsesTheFolderStatisticsUnlessGivenCalibrationText() throws Exception {
    Path q = quantize();
    String stories = TestServer.stories().toString();
    Run fromFolder =
        QuantizePublishSwapTest.kvant(
            "eval",
            "--model",
            stories,
            "--quantized",
            q.toString(),
            "--kv",
            "fp8",
            "--kv-encoding",
            "centered-qmse",
            "--threads",
            "2",
            "--max-len",
            "64");
    assertThat(fromFolder.code()).as(fromFolder.err()).isZero();
    assertThat(fromFolder.out()).contains("\"kv_statistics\":\"kv_calibration.safetensors\"");
    Path text = Files.writeString(tmp.resolve("cal.txt"), "Once upon a time there was a cat.");
    Run measured =
        QuantizePublishSwapTest.kvant(
            "eval",
            "--model",
            stories,
            "--quantized",
            q.toString(),
            "--kv",
            "fp8",
            "--kv-encoding",
            "centered-qmse",
            "--threads",
            "2",
            "--max-len",
            "64",
            "--calibration",
            text.toString());
    assertThat(measured.code()).as(measured.err()).isZero();
    assertThat(measured.out()).contains("\"kv_statistics\":\"calibration pass\"");
  }

  /** Lists {@code file} in the folder's manifest with its current size and digest. */
  private static void relist(Path dir, Path file) throws IOException {
    Manifest m = Manifest.read(dir);
    List<Manifest.FileEntry> files = new ArrayList<>();
    for (Manifest.FileEntry f : m.files()) {
      files.add(
          f.path().equals(KvCalibrationFile.FILE_NAME)
              ? new Manifest.FileEntry(f.path(), Files.size(file), Digests.sha256(file))
              : f);
    }
    new Manifest(
            m.model(),
            m.version(),
            m.parent(),
            m.created(),
            m.publisher(),
            m.recipe(),
            files,
            m.tensors(),
            m.encodings(),
            m.calibration())
        .write(dir);
  }
}
