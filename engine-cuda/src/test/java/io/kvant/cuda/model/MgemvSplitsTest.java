package io.kvant.cuda.model;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.cuda.device.CudaKernels;
import io.kvant.cuda.device.CudaKernels.MgKind;
import io.kvant.cuda.device.CudaKernels.MgVariant;
import io.kvant.cuda.device.CudaKernels.MqCodes;
import io.kvant.cuda.device.CudaKernels.MqVariant;
import org.junit.jupiter.api.Test;

class MgemvSplitsTest {
  @Test
  void everyPolicyPicksAFusedSplitTheSourceHas() {
    for (MgemvSplits policy : MgemvSplits.values()) {
      for (MgKind kind : MgKind.values()) {
        for (int out : new int[] {1, 1024, 4096, 8191, 8192, 14336, 128256}) {
          MgVariant fused = policy.fused(kind, out);
          assertThat(fused.fused(kind)).as("%s %s %d", policy, kind, out).isTrue();
        }
      }
    }
  }

  @Test
  void fixedKeepsOneSplitPerKindAndTheOthersFollowTheMatrixHeight() {
    assertThat(MgemvSplits.FIXED.product(MgKind.I4, 14336)).isEqualTo(MgVariant.F4U2);
    assertThat(MgemvSplits.FIXED.product(MgKind.BF16, 4096)).isEqualTo(MgVariant.F2U2);
    assertThat(MgemvSplits.BY_SHAPE.product(MgKind.I4, 14336)).isEqualTo(MgVariant.F4U1);
    assertThat(MgemvSplits.BY_SHAPE.product(MgKind.E4M3, 4096)).isEqualTo(MgVariant.F4U2);
    assertThat(MgemvSplits.BY_SHAPE.product(MgKind.BF16, 4096)).isEqualTo(MgVariant.F1U4);
    assertThat(MgemvSplits.BY_SHAPE.product(MgKind.BF16, 128256)).isEqualTo(MgVariant.F2U2);
    assertThat(MgemvSplits.SPLIT_K.product(MgKind.I8, 4096)).isEqualTo(MgVariant.F4U1K4);
    assertThat(MgemvSplits.SPLIT_K.product(MgKind.I8, 14336)).isEqualTo(MgVariant.F4U1);
    // gate and up (swiglu needs an even feature count: every fused dense split has one)
    assertThat(MgemvSplits.BY_SHAPE.fused(MgKind.I4, 14336)).isEqualTo(MgVariant.F4U1);
    assertThat(MgemvSplits.SPLIT_K.fused(MgKind.F16, 4096)).isEqualTo(MgVariant.F2U2K4);
    assertThat(MgemvSplits.SPLIT_K_F4.product(MgKind.BF16, 4096)).isEqualTo(MgVariant.F4U1K4);
    assertThat(MgemvSplits.SPLIT_K_F4.product(MgKind.BF16, 128256)).isEqualTo(MgVariant.F4U1);
    assertThat(MgemvSplits.SPLIT_K_F4.fused(MgKind.BF16, 14336)).isEqualTo(MgVariant.F4U1K4);
    assertThat(MgemvSplits.SPLIT_K_F4.product(MgKind.I4, 14336)).isEqualTo(MgVariant.F4U1);
    assertThat(MgemvSplits.SPLIT_K_F4.fused(MgKind.E4M3, 4096)).isEqualTo(MgVariant.F4U1K4);
  }

  @Test
  void tiledProductsTakeSixteenWarpsForFewRowsAndEightForTheHeadOrTwoMmas() {
    assertThat(MgemvSplits.DEFAULT.tiled(4096, 1)).isEqualTo(MqVariant.K16U2);
    assertThat(MgemvSplits.DEFAULT.tiled(14336, 8)).isEqualTo(MqVariant.K16U2);
    assertThat(MgemvSplits.DEFAULT.tiled(128256, 1)).isEqualTo(MqVariant.K8U4);
    assertThat(MgemvSplits.DEFAULT.tiled(4096, 9)).isEqualTo(MqVariant.K8U4);
    assertThat(MgemvSplits.MQ_K16U4.tiled(128256, 16)).isEqualTo(MqVariant.K16U4);
  }

  @Test
  void theDefaultGivesTheTiledProductsUpToTheKernelLimit() {
    // measured in session 14: 17-32 rows on the tiled kernels beat F16 tiles + cuBLASLt 2.5-3.3x
    // in whole 8B decode steps, so the default must not fall back to the tiles there; session 17:
    // the tall INT4 products of 1-8 rows on K8U4
    assertThat(MgemvSplits.DEFAULT).isEqualTo(MgemvSplits.MQ_32_TALL_INT4_K8U4);
    assertThat(MgemvSplits.DEFAULT.tiledRows()).isEqualTo(CudaKernels.MQ_ROWS).isEqualTo(32);
  }

  @Test
  void
      onlyTheMq32PoliciesGiveTheTiledProductsMoreThanSixteenRowsAndEveryPolicyPicksASplitWithKernels() {
    for (MgemvSplits policy : MgemvSplits.values()) {
      int rows = policy.tiledRows();
      assertThat(rows)
          .as("%s", policy)
          .isEqualTo(
              policy == MgemvSplits.MQ_32
                      || policy == MgemvSplits.MQ_32_K16U2_8BIT
                      || policy == MgemvSplits.MQ_32_TALL_K8U4
                      || policy == MgemvSplits.MQ_32_TALL_INT4_K8U4
                  ? CudaKernels.MQ_ROWS
                  : 16);
      for (int n = 1; n <= rows; n++) {
        for (int out : new int[] {1024, 4096, 14336, 128256}) {
          MqVariant v = policy.tiled(out, n);
          assertThat(v.takes(n)).as("%s %d rows of %d: %s", policy, n, out, v).isTrue();
        }
      }
    }
    assertThat(MgemvSplits.MQ_32.tiled(4096, 17)).isEqualTo(MqVariant.K8U4);
    assertThat(MgemvSplits.MQ_K16U2.tiled(4096, 32)).isEqualTo(MqVariant.K8U4);
    assertThat(MgemvSplits.MQ_32_TALL_K8U4.tiled(14336, 1)).isEqualTo(MqVariant.K8U4);
    assertThat(MgemvSplits.MQ_32_TALL_K8U4.tiled(4096, 1)).isEqualTo(MqVariant.K16U2);
    MgemvSplits tall4 = MgemvSplits.MQ_32_TALL_INT4_K8U4;
    assertThat(tall4.tiled(14336, 1, MqCodes.I4)).isEqualTo(MqVariant.K8U4);
    assertThat(tall4.tiled(4096, 1, MqCodes.I4)).isEqualTo(MqVariant.K16U2);
    assertThat(tall4.tiled(14336, 1, MqCodes.E4M3)).isEqualTo(MqVariant.K16U2);
    assertThat(tall4.tiled(14336, 1, MqCodes.I8)).isEqualTo(MqVariant.K16U2);
  }

  @Test
  void onlyTheEightBitPolicyGivesEightBitCodesSixteenWarpsFromNineRowsBelowTheHead() {
    MgemvSplits p = MgemvSplits.MQ_32_K16U2_8BIT;
    for (MqCodes codes : new MqCodes[] {MqCodes.I8, MqCodes.E4M3}) {
      assertThat(p.tiled(4096, 9, codes)).isEqualTo(MqVariant.K16U2);
      assertThat(p.tiled(14336, 16, codes)).isEqualTo(MqVariant.K16U2);
      assertThat(p.tiled(128256, 16, codes)).isEqualTo(MqVariant.K8U4);
      assertThat(p.tiled(4096, 17, codes)).isEqualTo(MqVariant.K8U4);
      assertThat(p.tiled(4096, 4, codes)).isEqualTo(MqVariant.K16U2);
      assertThat(MgemvSplits.DEFAULT.tiled(4096, 9, codes)).isEqualTo(MqVariant.K8U4);
    }
    assertThat(p.tiled(4096, 9, MqCodes.I4)).isEqualTo(MqVariant.K8U4);
    assertThat(p.tiledRows()).isEqualTo(CudaKernels.MQ_ROWS);
    for (MgemvSplits policy : MgemvSplits.values()) {
      for (MqCodes codes : MqCodes.values()) {
        for (int n = 1; n <= policy.tiledRows(); n++) {
          for (int out : new int[] {1024, 4096, 14336, 128256}) {
            assertThat(policy.tiled(out, n, codes).takes(n))
                .as("%s %s %d rows of %d", policy, codes, n, out)
                .isTrue();
            boolean int4Tall =
                policy == MgemvSplits.MQ_32_TALL_INT4_K8U4
                    && codes == MqCodes.I4
                    && out >= MgemvSplits.TALL_ROWS;
            if (policy != p && !int4Tall) {
              assertThat(policy.tiled(out, n, codes)).isEqualTo(policy.tiled(out, n));
            }
          }
        }
      }
    }
  }

  @Test
  void sixteenWarpSplitsStopAtSixteenRowsAndK8u4TakesUpToTheKernelLimit() {
    assertThat(MqVariant.K16U2.takes(16)).isTrue();
    assertThat(MqVariant.K16U2.takes(17)).isFalse();
    assertThat(MqVariant.K16U4.takes(17)).isFalse();
    assertThat(MqVariant.K8U4.takes(CudaKernels.MQ_ROWS)).isTrue();
    assertThat(MqVariant.K8U4.takes(CudaKernels.MQ_ROWS + 1)).isFalse();
    assertThat(MqVariant.K8U4.takes(0)).isFalse();
  }
}
