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
   * A centered kv_append block keeps the key of each warp that takes keys (warps below {@code
   * min(warps, kvHeads)}) in shared memory, a weighted one also two tiles of 8 rows of W and the 32
   * candidates' error vectors ({@code (2 * 8 + 32 + 1) * headSize} floats, rounded up to 16 bytes):
   * the block shrinks until those warps fit the shared memory it may take (opted in: an H200's 227
   * KiB), and takes none when keys are not centered.
   */
  @Test
  void centeredBlocksFitTheirSharedMemory() {
    int h200 = 227 * 1024;
    assertThat(CudaKernels.centeredThreads(MSE, 256, 8, 1024, 48 * 1024)).isEqualTo(1024);
    assertThat(CudaKernels.centeredShared(MSE, 256, 8, 1024)).isZero();
    assertThat(CudaKernels.centeredThreads(CENTERED, 128, 8, 1024, 48 * 1024)).isEqualTo(1024);
    assertThat(CudaKernels.centeredShared(CENTERED, 128, 8, 1024)).isEqualTo(8 * 128 * 4);
    assertThat(CudaKernels.centeredShared(CENTERED, 128, 32, 512)).isEqualTo(16 * 128 * 4);
    assertThat(CudaKernels.centeredWarpBytes(WEIGHTED, 128)).isEqualTo(49 * 128 * 4);
    assertThat(CudaKernels.centeredWarpBytes(WEIGHTED, 6)).isEqualTo(296 * 4);
    // llama-3-8b's 8 kv heads of 128: all 8 key warps at once, the block whole
    assertThat(CudaKernels.centeredThreads(WEIGHTED, 128, 8, 1024, h200)).isEqualTo(1024);
    assertThat(CudaKernels.centeredShared(WEIGHTED, 128, 8, 1024)).isEqualTo(8 * 49 * 128 * 4);
    // head size 256: 4 key warps fit
    int t = CudaKernels.centeredThreads(WEIGHTED, 256, 8, 1024, h200);
    assertThat(t).isEqualTo(4 * 32);
    assertThat(CudaKernels.centeredShared(WEIGHTED, 256, 8, t)).isLessThanOrEqualTo(h200);
    // without opting in, one key warp of 128 fits in 48 KiB, none of 256
    assertThat(CudaKernels.centeredThreads(WEIGHTED, 128, 8, 1024, 48 * 1024)).isEqualTo(32);
    assertThatThrownBy(() -> CudaKernels.centeredThreads(WEIGHTED, 256, 8, 1024, 48 * 1024))
        .isInstanceOf(IllegalArgumentException.class);
  }
}
