package io.kvant.perf;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Bad input to {@code kvant bench} gets one line naming the file or option, and its exit code. */
class BenchErrorsTest {
  private final BenchCapture bench = new BenchCapture();

  private int bench(String... args) {
    return bench.run(args);
  }

  private String err() {
    return bench.err().strip();
  }

  @Test
  void aMissingModelIsNamedWithoutAnExceptionClass(@TempDir Path dir) {
    Path missing = dir.resolve("missing.gguf");
    assertThat(bench("decode", "--model", missing.toString())).isEqualTo(1);
    assertThat(err())
        .isEqualTo("kvant bench decode: missing.gguf: no such model file or folder")
        .doesNotContain("Exception");
  }

  @Test
  void aMalformedModelIsNamedWithTheProblem(@TempDir Path dir) throws IOException {
    Path bad = Files.writeString(dir.resolve("bad.gguf"), "hello");
    assertThat(bench("batch", "--model", bad.toString(), "--concurrency", "1")).isEqualTo(1);
    assertThat(err()).startsWith("kvant bench batch: bad.gguf: ").doesNotContain("Exception");
  }

  @Test
  void aConcurrencyLevelBelowOneIsRefusedBeforeTheModelIsRead(@TempDir Path dir) {
    // the model does not exist: the level is checked first, not after a load and repack
    Path missing = dir.resolve("missing.gguf");
    assertThat(bench("batch", "--model", missing.toString(), "--concurrency", "4,0")).isEqualTo(2);
    assertThat(err()).isEqualTo("kvant bench batch: --concurrency: must be >= 1, got 0");
  }

  @Test
  void bandwidthSizesBelowOneNameTheirOptions() {
    assertThat(bench("bandwidth", "--mib", "0")).isEqualTo(2);
    assertThat(err())
        .isEqualTo(
            "kvant bench bandwidth: --mib, --trials and --threads must be >= 1, got 0, 5 and "
                + Runtime.getRuntime().availableProcessors());
  }
}
