package io.kvant.cuda.device;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** {@link CudaOptions} from the environment (runs without a GPU). */
class CudaOptionsTest {
  @Test
  void w8a8IsOffUnlessARowCountIsGiven() {
    assertThat(CudaOptions.fromEnvironment(Map.of("HOME", "/h")).w8a8MinRows()).isZero();
    assertThat(CudaOptions.fromEnvironment(Map.of("KVANT_CUDA_W8A8", "0")).w8a8MinRows()).isZero();
    assertThat(CudaOptions.fromEnvironment(Map.of("KVANT_CUDA_W8A8", " 16 ")).w8a8MinRows())
        .isEqualTo(16);
    assertThat(CudaOptions.fromEnvironment(Map.of("KVANT_CUDA_W8A8", "off")).w8a8MinRows())
        .isZero();
    assertThat(CudaOptions.fromEnvironment(Map.of("KVANT_CUDA_W8A8", "on")).w8a8MinRows())
        .isEqualTo(CudaOptions.W8A8_MEASURED_MIN_ROWS);
    CudaOptions o = CudaOptions.fromEnvironment(Map.of("KVANT_CUDA_W8A8", "64"));
    assertThat(o.withGraphs(false).w8a8MinRows()).isEqualTo(64);
    assertThat(new CudaOptions(List.of(), Path.of("/c"), 0, true).w8a8MinRows()).isZero();
  }

  @Test
  void eightBitCodesAreTiledUnlessTurnedOffOrW8a8IsOn() {
    assertThat(CudaOptions.fromEnvironment(Map.of()).tilesEightBit()).isTrue();
    assertThat(new CudaOptions(List.of(), Path.of("/c"), 0, true).tilesEightBit()).isTrue();
    assertThat(CudaOptions.fromEnvironment(Map.of("KVANT_CUDA_MQ8", "off")).tilesEightBit())
        .isFalse();
    CudaOptions on = CudaOptions.fromEnvironment(Map.of("KVANT_CUDA_MQ8", " on "));
    assertThat(on.tilesEightBit()).isTrue();
    assertThat(on.withGraphs(false).tilesEightBit()).isTrue();
    assertThat(
            CudaOptions.fromEnvironment(Map.of("KVANT_CUDA_MQ8", "on", "KVANT_CUDA_W8A8", "on"))
                .tilesEightBit())
        .isFalse();
    assertThatThrownBy(() -> CudaOptions.fromEnvironment(Map.of("KVANT_CUDA_MQ8", "yes")))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("KVANT_CUDA_MQ8")
        .hasMessageContaining("yes");
  }

  @Test
  void aBadW8a8ValueNamesTheVariable() {
    for (String bad : new String[] {"sixteen", "-1", "1.5"}) {
      assertThatThrownBy(() -> CudaOptions.fromEnvironment(Map.of("KVANT_CUDA_W8A8", bad)))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("KVANT_CUDA_W8A8")
          .hasMessageContaining(bad);
    }
    assertThatThrownBy(() -> new CudaOptions(List.of(), Path.of("/c"), 0, true, -2, false))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("w8a8MinRows");
  }
}
