package io.kvant.perf.heap;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.perf.synth.ModelShape;
import io.kvant.perf.synth.SynthModelWriter;
import io.kvant.perf.synth.WeightType;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Quantizing ({@code --weights} at load, {@code kvant quantize}) holds the quantized weights on the
 * Java heap; a heap too small for it must end in a message that says so, not in an {@code
 * OutOfMemoryError} stack trace (before session 17, {@code ./kvant serve --model <1B F16> --weights
 * fp8} and {@code ./kvant quantize} of that file under the launcher's default {@code -Xmx512m} died
 * that way). A child JVM with 40 MiB of heap and a model whose 2048x5632 matrices take 46 MiB as
 * floats.
 */
class OutOfHeapTest {
  @TempDir Path dir;

  @Test
  void quantizingAtLoadOutOfHeapSaysSoAndExitsWithOne() throws Exception {
    Result r =
        kvant(
            "generate",
            "--model",
            wideModel().toString(),
            "--weights",
            "fp8",
            "--prompt-ids",
            "1",
            "--max-tokens",
            "1",
            "--threads",
            "1");
    assertThat(r.exit()).as(r.out()).isEqualTo(1);
    assertSaysOutOfHeap(r.out(), "kvant generate: quantizing at load ran out of Java heap");
  }

  @Test
  void quantizeOutOfHeapSaysSoAndWritesNoVersion() throws Exception {
    Path model = wideModel();
    Path out = dir.resolve("version");
    Result r =
        kvant(
            "quantize",
            "--model",
            model.toString(),
            "--recipe",
            "fp8",
            "--out",
            out.toString(),
            "--no-kv-calibration");
    assertThat(r.exit()).as(r.out()).isEqualTo(1);
    assertSaysOutOfHeap(r.out(), "kvant quantize: quantizing " + model + " ran out of Java heap");
    assertThat(out.resolve("manifest.json")).doesNotExist();
  }

  @Test
  void evaluatingOutOfHeapSaysSo() throws Exception {
    Result r =
        kvant("eval", "--model", wideModel().toString(), "--weights", "fp8", "--threads", "1");
    assertThat(r.exit()).as(r.out()).isEqualTo(1);
    assertSaysOutOfHeap(r.out(), "kvant eval: evaluating ran out of Java heap");
  }

  @Test
  void publishingOutOfHeapSaysSoAndPublishesNothing() throws Exception {
    Path model = wideModel();
    Path bucket = Files.createDirectories(dir.resolve("bucket"));
    Result r =
        kvant(
            "agent",
            "publish",
            "--model",
            model.toString(),
            "--bucket",
            bucket.toUri().toString(),
            "--name",
            "wide",
            "--base",
            model.toString());
    assertThat(r.exit()).as(r.out()).isEqualTo(1);
    assertSaysOutOfHeap(r.out(), "kvant agent publish: ran out of Java heap");
    try (var files = Files.walk(bucket)) {
      assertThat(files.filter(p -> p.getFileName().toString().equals("manifest.json"))).isEmpty();
    }
  }

  private static void assertSaysOutOfHeap(String out, String start) {
    assertThat(out)
        .as(out)
        .contains(start)
        .contains("KVANT_HEAP")
        .doesNotContain("OutOfMemoryError")
        .doesNotContain("\tat ");
  }

  private Path wideModel() throws IOException {
    Path model = dir.resolve("wide.gguf");
    if (!Files.exists(model)) {
      new SynthModelWriter(
              new ModelShape("wide", 2048, 1, 16, 4, 5632, 512, 128, 10000f, true),
              WeightType.F16,
              7,
              2)
          .write(model, (done, total) -> {});
    }
    return model;
  }

  private record Result(int exit, String out) {}

  private static Result kvant(String... args) throws IOException, InterruptedException {
    List<String> cmd =
        new ArrayList<>(
            List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx40m",
                "--add-modules",
                "jdk.incubator.vector",
                "--enable-native-access=ALL-UNNAMED",
                "-cp",
                System.getProperty("java.class.path"),
                "io.kvant.server.cli.Main"));
    cmd.addAll(List.of(args));
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(120, TimeUnit.SECONDS)).isTrue();
    return new Result(p.exitValue(), out);
  }
}
