package io.kvant.perf.bandwidth;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class BandwidthProbeTest {
  @Test
  void everyKernelReportsAPositiveRate() {
    Map<String, BandwidthProbe.KernelResult> r =
        new BandwidthProbe(1 << 16, 2, System::nanoTime).run(2);
    assertThat(r.keySet()).containsExactlyElementsOf(BandwidthProbe.KERNELS);
    assertThat(r.values())
        .allSatisfy(
            k -> {
              assertThat(k.bestGbPerS()).isPositive().isFinite();
              assertThat(k.threads()).isEqualTo(2);
            });
  }

  @Test
  void vectorSumMatchesScalar() {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment a = arena.allocate(8L * 1003, 64);
      double expect = 0;
      for (int i = 0; i < 1003; i++) {
        a.setAtIndex(ValueLayout.JAVA_DOUBLE, i, i * 0.5);
        expect += i * 0.5;
      }
      assertThat(BandwidthProbe.sum(a, 3, 1003)).isEqualTo(expect - 0 - 0.5 - 1.0);
    }
  }

  /**
   * The arrays live off the heap: {@code bench bandwidth} (and {@code bench decode}'s bound) ran
   * out of heap under the launcher's default {@code -Xmx512m} with the default 3 x 256 MiB. Here a
   * JVM of 48 MiB of heap probes 3 x 32 MiB.
   */
  @Test
  void theProbeRunsWithAHeapSmallerThanItsArrays() throws IOException, InterruptedException {
    List<String> cmd =
        List.of(
            Path.of(System.getProperty("java.home"), "bin", "java").toString(),
            "-Xmx48m",
            "--add-modules",
            "jdk.incubator.vector",
            "--enable-native-access=ALL-UNNAMED",
            "-cp",
            System.getProperty("java.class.path"),
            "io.kvant.perf.BenchMain",
            "bench",
            "bandwidth",
            "--mib",
            "32",
            "--trials",
            "1",
            "--threads",
            "1");
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
    assertThat(p.exitValue()).as(out).isZero();
    assertThat(out).contains("3 arrays x 32 MiB").containsPattern("(?m)^read +1 +[0-9.]+$");
  }
}
