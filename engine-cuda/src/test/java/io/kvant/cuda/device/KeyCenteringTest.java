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
   * A centered kv_append block keeps each warp's key in shared memory: the block shrinks so that it
   * stays within the 48 KiB a launch gets without opting in, and takes no shared memory at all when
   * keys are not centered. The weighted search's own launch (kv_weighted_parts) fits too, at the
   * largest head size.
   */
  @Test
  void centeredBlocksFitTheirSharedMemory() {
    assertThat(CudaKernels.centeredThreads(MSE, 256)).isEqualTo(1024);
    assertThat(CudaKernels.centeredShared(MSE, 256, 1024)).isZero();
    assertThat(CudaKernels.centeredThreads(CENTERED, 128)).isEqualTo(1024);
    assertThat(CudaKernels.centeredShared(CENTERED, 128, 1024)).isEqualTo(32 * 128 * 4);
    assertThat(CudaKernels.centeredThreads(WEIGHTED, 128)).isEqualTo(1024);
    assertThat(CudaKernels.centeredShared(WEIGHTED, 128, 1024)).isEqualTo(32 * 128 * 4);
    int t = CudaKernels.centeredThreads(WEIGHTED, 256);
    assertThat(t).isEqualTo(1024);
    assertThat(CudaKernels.centeredShared(WEIGHTED, 256, t)).isLessThanOrEqualTo(48 * 1024);
    // y, 32 padded error vectors, 32 x ceil(n / 8) row sums and n x ceil(n / 8) of W: within the
    // 48 KiB up to head size 128, opted in (kernel attribute) above, within Hopper's 227 KiB
    assertThat(CudaKernels.weightedPartsShared(128))
        .isEqualTo((128 + 32 * 129 + 32 * 16 + 128 * 16) * 4)
        .isLessThanOrEqualTo(48 * 1024);
    assertThat(CudaKernels.weightedPartsShared(256))
        .isEqualTo((256 + 32 * 257 + 32 * 32 + 256 * 32) * 4)
        .isLessThanOrEqualTo(227 * 1024);
  }

  /** The weighted search's scratch: given only with moments, sized by rows and kv heads. */
  @Test
  void theWeightedSearchScratchComesWithMomentsAndRows() {
    assertThat(MEANS.withParts(4096, 8)).isSameAs(MEANS);
    KeyCentering withParts = MOMENTS.withParts(4096, 8);
    assertThat(withParts.parts()).isEqualTo(4096);
    assertThat(withParts.partRows()).isEqualTo(8);
    assertThat(withParts.bits()).isEqualTo(MOMENTS.bits());
    assertThat(MOMENTS.parts()).isZero();
    assertThatThrownBy(() -> new KeyCentering(64, 0, 128, 256, 0, 4096, 8))
        .hasMessageContaining("needs query moments");
    assertThatThrownBy(() -> MOMENTS.withParts(4096, 0)).hasMessageContaining("0 rows");
    // 8 parts of 32 candidates' floats per row and kv head
    assertThat(CudaKernels.weightedPartsBytes(3, 8)).isEqualTo(3L * 8 * 8 * 32 * 4);
  }
}
