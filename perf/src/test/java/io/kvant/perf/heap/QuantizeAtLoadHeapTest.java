package io.kvant.perf.heap;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.perf.synth.ModelShape;
import io.kvant.perf.synth.SynthModelWriter;
import io.kvant.perf.synth.WeightType;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code --weights} quantizes at load on the Java heap; a heap too small for it must end in a
 * message that says so, not in an {@code OutOfMemoryError} stack trace (before session 17, {@code
 * ./kvant serve --model <1B F16> --weights fp8} under the launcher's default {@code -Xmx512m} died
 * that way). A child JVM with 40 MiB of heap and a model whose 2048x5632 matrices take 46 MiB as
 * floats.
 */
class QuantizeAtLoadHeapTest {
  @Test
  void quantizingAtLoadOutOfHeapSaysSoAndExitsWithOne(@TempDir Path dir) throws Exception {
    Path model = dir.resolve("wide.gguf");
    new SynthModelWriter(
            new ModelShape("wide", 2048, 1, 16, 4, 5632, 512, 128, 10000f, true),
            WeightType.F16,
            7,
            2)
        .write(model, (done, total) -> {});
    List<String> cmd =
        List.of(
            Path.of(System.getProperty("java.home"), "bin", "java").toString(),
            "-Xmx40m",
            "--add-modules",
            "jdk.incubator.vector",
            "--enable-native-access=ALL-UNNAMED",
            "-cp",
            System.getProperty("java.class.path"),
            "io.kvant.server.cli.Main",
            "generate",
            "--model",
            model.toString(),
            "--weights",
            "fp8",
            "--prompt-ids",
            "1",
            "--max-tokens",
            "1",
            "--threads",
            "1");
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(120, TimeUnit.SECONDS)).isTrue();
    assertThat(p.exitValue()).as(out).isEqualTo(1);
    assertThat(out)
        .as(out)
        .contains("kvant generate: quantizing at load ran out of Java heap (at most")
        .contains("KVANT_HEAP")
        .doesNotContain("OutOfMemoryError")
        .doesNotContain("\tat ");
  }
}
