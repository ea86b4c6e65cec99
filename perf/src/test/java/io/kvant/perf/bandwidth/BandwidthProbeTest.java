package io.kvant.perf.bandwidth;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Map;
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
    double[] a = new double[1003];
    double expect = 0;
    for (int i = 0; i < a.length; i++) {
      a[i] = i * 0.5;
      expect += a[i];
    }
    assertThat(BandwidthProbe.sum(a, 3, 1003)).isEqualTo(expect - 0 - 0.5 - 1.0);
  }
}
