package io.kvant.cuda.device;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

/** The centered KV encodings' launch arguments, checked on the host (no GPU needed). */
class KeyCenteringTest {
  private static final int MSE = CudaKernels.KV_TOKEN_MSE;
  private static final int CENTERED = MSE | CudaKernels.KV_CENTERED;
  private static final int WEIGHTED = CENTERED | CudaKernels.KV_WEIGHTED;
  private static final KeyCentering MEANS = new KeyCentering(64, 0, 128, 256, 1);
  private static final KeyCentering MOMENTS = new KeyCentering(64, 512, 128, 256, 0);

  @Test
  void theBitsFollowTheStatisticsGiven() {
    assertThat(KeyCentering.NONE.bits()).isZero();
    assertThat(KeyCentering.NONE.centered()).isFalse();
    assertThat(MEANS.bits()).isEqualTo(CudaKernels.KV_CENTERED);
    assertThat(MOMENTS.bits()).isEqualTo(CudaKernels.KV_CENTERED | CudaKernels.KV_WEIGHTED);
    assertThatThrownBy(() -> new KeyCentering(64, 0, 0, 256, 0))
        .hasMessageContaining("cos and sin");
    assertThatThrownBy(() -> new KeyCentering(0, 512, 128, 256, 0))
        .hasMessageContaining("query moments without key means");
    assertThatThrownBy(() -> new KeyCentering(64, 0, 128, 256, 2))
        .hasMessageContaining("rope style");
  }

  @Test
  void aLaunchNeedsTheCenteringItsBitsNameAndLeastSquaresTokenScales() {
    assertThatCode(() -> CudaKernels.requireCentering(MSE, KeyCentering.NONE, 64))
        .doesNotThrowAnyException();
    assertThatCode(() -> CudaKernels.requireCentering(CENTERED, MEANS, 64))
        .doesNotThrowAnyException();
    assertThatCode(() -> CudaKernels.requireCentering(WEIGHTED, MOMENTS, 256))
        .doesNotThrowAnyException();
    assertThatThrownBy(() -> CudaKernels.requireCentering(CENTERED, KeyCentering.NONE, 64))
        .hasMessageContaining("with key centering");
    assertThatThrownBy(() -> CudaKernels.requireCentering(CENTERED, MOMENTS, 64))
        .hasMessageContaining("with key centering");
    assertThatThrownBy(() -> CudaKernels.requireCentering(MSE, MEANS, 64))
        .hasMessageContaining("with key centering");
    assertThatThrownBy(() -> CudaKernels.requireCentering(CudaKernels.KV_CENTERED, MEANS, 64))
        .hasMessageContaining("per-token least-squares scales");
    assertThatThrownBy(
            () -> CudaKernels.requireCentering(CENTERED | CudaKernels.KV_KEY_CHANNELS, MEANS, 64))
        .hasMessageContaining("per-token least-squares scales");
    assertThatThrownBy(() -> CudaKernels.requireCentering(CENTERED, MEANS, 63))
        .hasMessageContaining("even head size <= 256");
    assertThatThrownBy(() -> CudaKernels.requireCentering(CENTERED, MEANS, 258))
        .hasMessageContaining("even head size <= 256");
  }

  /**
   * A centered kv_append block keeps each warp's key (and a weighted one the candidate's error
   * vector) in shared memory: the block shrinks so that it stays within the 48 KiB a launch gets
   * without opting in, and takes no shared memory at all when keys are not centered.
   */
  @Test
  void centeredBlocksFitTheirSharedMemory() {
    assertThat(CudaKernels.centeredThreads(MSE, 256)).isEqualTo(1024);
    assertThat(CudaKernels.centeredShared(MSE, 256, 1024)).isZero();
    assertThat(CudaKernels.centeredThreads(CENTERED, 128)).isEqualTo(1024);
    assertThat(CudaKernels.centeredShared(CENTERED, 128, 1024)).isEqualTo(32 * 128 * 4);
    assertThat(CudaKernels.centeredThreads(WEIGHTED, 128)).isEqualTo(1024);
    assertThat(CudaKernels.centeredShared(WEIGHTED, 128, 1024)).isEqualTo(32 * 2 * 128 * 4);
    int t = CudaKernels.centeredThreads(WEIGHTED, 256);
    assertThat(t).isEqualTo(24 * 32);
    assertThat(CudaKernels.centeredShared(WEIGHTED, 256, t)).isLessThanOrEqualTo(48 * 1024);
  }
}
