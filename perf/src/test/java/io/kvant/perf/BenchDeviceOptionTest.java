package io.kvant.perf;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.engine.testing.SharedModels;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * {@code bench decode|batch --device}: cuda runs on the GPU or fails with one line saying why; auto
 * falls back to the CPU backend saying why; a bad value names the option.
 */
class BenchDeviceOptionTest {
  private final ByteArrayOutputStream out = new ByteArrayOutputStream();
  private final ByteArrayOutputStream err = new ByteArrayOutputStream();

  private int bench(String... args) {
    return new BenchMain(
            new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8),
            Map.of())
        .run(args);
  }

  private static String model() {
    return SharedModels.require("stories260K/stories260K.gguf").toString();
  }

  @Test
  void cudaRunsOnTheGpuOrSaysInOneLineWhyNot() {
    int rc =
        bench("decode", "--model", model(), "--tokens", "4", "--warmup", "1", "--device", "cuda");
    String e = err.toString(StandardCharsets.UTF_8);
    if (rc == 0) {
      assertThat(out.toString(StandardCharsets.UTF_8)).contains("backend     cuda");
    } else {
      assertThat(rc).isEqualTo(2);
      assertThat(e).startsWith("kvant bench: --device cuda: ");
      assertThat(e.strip().lines().count()).isEqualTo(1);
    }
  }

  @Test
  void autoFallsBackToTheCpuBackendSayingWhy() {
    int rc =
        bench(
            "batch",
            "--model",
            model(),
            "--concurrency",
            "1,2",
            "--tokens",
            "4",
            "--warmup",
            "1",
            "--device",
            "auto");
    assertThat(rc).isZero();
    String o = out.toString(StandardCharsets.UTF_8);
    assertThat(o).containsPattern("(?m)^1 +[0-9.]+");
    assertThat(o).containsPattern("(?m)^2 +[0-9.]+");
    if (o.contains("backend     cpu")) {
      assertThat(err.toString(StandardCharsets.UTF_8)).contains("--device auto: ");
    } else {
      assertThat(o).contains("backend     cuda");
    }
  }

  @Test
  void bandwidthOnCudaMeasuresTheCopyOrSaysInOneLineWhyNot() {
    int rc = bench("bandwidth", "--device", "cuda", "--mib", "64", "--trials", "3");
    if (rc == 0) {
      assertThat(out.toString(StandardCharsets.UTF_8)).containsPattern("copy +[0-9.]+ TB/s");
    } else {
      assertThat(rc).isEqualTo(2);
      String e = err.toString(StandardCharsets.UTF_8);
      assertThat(e).startsWith("kvant bench: --device cuda: ");
      assertThat(e.strip().lines().count()).isEqualTo(1);
    }
  }

  @Test
  void bandwidthRefusesAnEmptyBufferNamingTheOption() {
    int rc = bench("bandwidth", "--device", "cuda", "--mib", "0");
    assertThat(rc).isEqualTo(2);
    assertThat(err.toString(StandardCharsets.UTF_8)).contains("--mib and --trials must be >= 1");
  }

  @Test
  void anUnknownDeviceIsRefusedNamingTheOption() {
    int rc = bench("decode", "--model", model(), "--device", "gpu");
    assertThat(rc).isEqualTo(2);
    assertThat(err.toString(StandardCharsets.UTF_8))
        .contains("--device: must be one of cpu, cuda, auto; got 'gpu'");
  }
}
