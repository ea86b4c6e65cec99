package io.kvant.cuda.bench;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kvant.engine.forward.DeviceSampling;
import org.junit.jupiter.api.Test;

/** {@code CudaBench decode --sample}: parsing and the per-step rules (no GPU needed). */
class CudaBenchSamplingTest {
  @Test
  void greedyOrTemperatureTopPTopK() {
    assertThat(CudaBench.sampling("greedy")).isEqualTo(DeviceSampling.greedy());
    DeviceSampling d = CudaBench.sampling("0.8:0.9:40");
    assertThat(d.temperature()).isEqualTo(0.8f);
    assertThat(d.topP()).isEqualTo(0.9f);
    assertThat(d.topK()).isEqualTo(40);
    assertThat(d.minP()).isZero();
    assertThat(CudaBench.sampling("0.8:1:0:0.05").minP()).isEqualTo(0.05f);
    for (String bad :
        new String[] {
          "0.8", "0:0.9:0", "0.8:1.5:0", "0.8:0.9:-1", "a:b:c", "", "0.8:1:0:2", "1:1:0:0:0"
        }) {
      assertThatThrownBy(() -> CudaBench.sampling(bad))
          .as(bad)
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageStartingWith("--sample: greedy or TEMPERATURE:TOP_P:TOP_K[:MIN_P]");
    }
  }

  @Test
  void sampledStepsGetAFreshSeedPerRowAndStep() {
    DeviceSampling[] greedy = {DeviceSampling.greedy(), DeviceSampling.greedy()};
    assertThat(CudaBench.stepRules(DeviceSampling.greedy(), greedy, 5)).isSameAs(greedy);
    DeviceSampling rule = CudaBench.sampling("0.7:0.95:0:0.1");
    DeviceSampling[] a = CudaBench.stepRules(rule, greedy, 0);
    DeviceSampling[] b = CudaBench.stepRules(rule, greedy, 1);
    assertThat(a).extracting(DeviceSampling::seed).containsExactly(1L, 2L);
    assertThat(b).extracting(DeviceSampling::seed).containsExactly(3L, 4L);
    assertThat(b).allSatisfy(r -> assertThat(r.topP()).isEqualTo(0.95f));
    assertThat(b).allSatisfy(r -> assertThat(r.minP()).isEqualTo(0.1f));
  }
}
