package io.kvant.perf;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.engine.testing.SharedModels;
import org.junit.jupiter.api.Test;

/**
 * {@code bench decode|batch --device}: cuda runs on the GPU or fails with one line saying why; auto
 * falls back to the CPU backend saying why; a bad value names the option.
 */
class BenchDeviceOptionTest {
  private final BenchCapture bench = new BenchCapture();

  private int bench(String... args) {
    return bench.run(args);
  }

  private static String model() {
    return SharedModels.require("stories260K/stories260K.gguf").toString();
  }

  @Test
  void cudaRunsOnTheGpuOrSaysInOneLineWhyNot() {
    int rc =
        bench("decode", "--model", model(), "--tokens", "4", "--warmup", "1", "--device", "cuda");
    String e = bench.err();
    if (rc == 0) {
      assertThat(bench.out()).contains("backend     cuda");
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
    String o = bench.out();
    assertThat(o).containsPattern("(?m)^1 +[0-9.]+");
    assertThat(o).containsPattern("(?m)^2 +[0-9.]+");
    if (o.contains("backend     cpu")) {
      assertThat(bench.err()).contains("--device auto: ");
    } else {
      assertThat(o).contains("backend     cuda");
    }
  }

  @Test
  void bandwidthOnCudaMeasuresTheCopyOrSaysInOneLineWhyNot() {
    int rc = bench("bandwidth", "--device", "cuda", "--mib", "64", "--trials", "3");
    if (rc == 0) {
      assertThat(bench.out()).containsPattern("copy +[0-9.]+ TB/s");
    } else {
      assertThat(rc).isEqualTo(2);
      String e = bench.err();
      assertThat(e).startsWith("kvant bench: --device cuda: ");
      assertThat(e.strip().lines().count()).isEqualTo(1);
    }
  }

  @Test
  void bandwidthRefusesAnEmptyBufferNamingTheOption() {
    int rc = bench("bandwidth", "--device", "cuda", "--mib", "0");
    assertThat(rc).isEqualTo(2);
    assertThat(bench.err()).contains("--mib and --trials must be >= 1");
  }

  @Test
  void anUnknownDeviceIsRefusedNamingTheOption() {
    int rc = bench("decode", "--model", model(), "--device", "gpu");
    assertThat(rc).isEqualTo(2);
    assertThat(bench.err()).contains("--device: must be one of cpu, cuda, auto; got 'gpu'");
  }
}
