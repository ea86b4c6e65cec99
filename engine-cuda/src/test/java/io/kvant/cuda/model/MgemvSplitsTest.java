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
    assertThat(MgemvSplits.MQ_32_TALL_INT4_K8U4.tiled(4096, 1)).isEqualTo(MqVariant.K16U2);
    assertThat(MgemvSplits.DEFAULT.tiled(4096, 2)).isEqualTo(MqVariant.K16U2);
    assertThat(MgemvSplits.DEFAULT.tiled(14336, 8)).isEqualTo(MqVariant.K16U2);
    assertThat(MgemvSplits.DEFAULT.tiled(128256, 1)).isEqualTo(MqVariant.K8U4);
    assertThat(MgemvSplits.DEFAULT.tiled(4096, 9)).isEqualTo(MqVariant.K8U4);
    assertThat(MgemvSplits.MQ_K16U4.tiled(128256, 16)).isEqualTo(MqVariant.K16U4);
  }

  @Test
  void theWidePolicyIsTheStagedOneUpToThirtyTwoRows() {
    for (MqCodes codes : MqCodes.values()) {
      for (int out : new int[] {1024, 4096, 14336, 128256}) {
        for (int n = 1; n <= CudaKernels.MQ_ROWS; n++) {
          boolean int4GateUp = codes == MqCodes.I4 && n == 1 && out == 14336;
          assertThat(MgemvSplits.MQ_WIDE.tiled(out, n, codes))
              .as("%s %d rows of %d", codes, n, out)
              .isEqualTo(int4GateUp ? MqVariant.K8S4 : MgemvSplits.MQ_STAGED.tiled(out, n, codes));
          assertThat(MgemvSplits.MQ_WIDE_K16S4.tiled(out, n, codes))
              .isEqualTo(MgemvSplits.MQ_STAGED.tiled(out, n, codes));
        }
      }
    }
    for (MgKind kind : MgKind.values()) {
      assertThat(MgemvSplits.MQ_WIDE.product(kind, 4096))
          .isEqualTo(MgemvSplits.MQ_STAGED.product(kind, 4096));
    }
  }

  @Test
  void onlyTheWidePolicyGivesMqwTheRowsAboveTheTiledProducts() {
    for (MgemvSplits policy : MgemvSplits.values()) {
      assertThat(policy.wideRows())
          .as("%s", policy)
          .isEqualTo(policy.name().startsWith("MQ_WIDE") ? 192 : 0);
    }
    // groups: at most a staged window (a column split must not cut one), or one per row
    assertThat(CudaKernels.mqwTakes(MqCodes.I4, 4096, 7)).isTrue();
    assertThat(CudaKernels.mqwTakes(MqCodes.I4, 4096, 8)).isTrue();
    assertThat(CudaKernels.mqwTakes(MqCodes.I4, 4096, 9)).isFalse();
    assertThat(CudaKernels.mqwTakes(MqCodes.I4, 4096, CudaKernels.MQ_ROW_GROUP)).isTrue();
    assertThat(CudaKernels.mqwTakes(MqCodes.I4, 4096 + 32, 5)).isFalse(); // not whole chunks
    assertThat(CudaKernels.mqwTakes(MqCodes.E4M3, 4096 + 32, CudaKernels.MQ_ROW_GROUP)).isTrue();
    assertThat(CudaKernels.mqwTakes(MqCodes.I8, 1056, 6)).isFalse(); // 64 does not divide 1056
  }

  @Test
  void mqwSplitsTheColumnsOnlyWhereBlocksAreFewAndThePartialSumsFit() {
    // 8B o-projection at 64 rows: 32 blocks on 132 SMs, 16 windows: 8 splits (two windows each)
    assertThat(CudaKernels.mqwSplits(32, 1, 4096, 64, 4096, 32L << 20, 132)).isEqualTo(8);
    // the same with room for three splits' sums only
    assertThat(CudaKernels.mqwSplits(32, 1, 4096, 64, 4096, 3L * 4 * 64 * 4096, 132)).isEqualTo(3);
    // the head: a thousand blocks need no split
    assertThat(CudaKernels.mqwSplits(1002, 1, 4096, 64, 128256, 32L << 20, 132)).isEqualTo(1);
    // one window: nothing to split
    assertThat(CudaKernels.mqwSplits(1, 1, 256, 64, 37, 32L << 20, 132)).isEqualTo(1);
    // more blocks than counters
    assertThat(CudaKernels.mqwSplits(70000, 1, 4096, 64, 37, 32L << 20, 132)).isEqualTo(1);
  }

  @Test
  void mqpTakesTwoPairsAWarpOnlyUnderThePairedPolicyAndWhereTheGridHasWavesToSpare() {
    // the 8B shape on 132 SMs: gate/up 14,336 pairs = 1,792 blocks, two rounds; down and o 2,048
    // pairs, q/k/v 3,072 pairs: under a wave of three blocks an SM, one
    assertThat(CudaKernels.mqpRounds(14336, true, 132)).isEqualTo(2);
    assertThat(CudaKernels.mqpRounds(2048, true, 132)).isEqualTo(1);
    assertThat(CudaKernels.mqpRounds(3072, true, 132)).isEqualTo(1);
    // the threshold: six blocks an SM
    assertThat(CudaKernels.mqpRounds(8 * 6 * 132, true, 132)).isEqualTo(2);
    assertThat(CudaKernels.mqpRounds(8 * 6 * 132 - 8, true, 132)).isEqualTo(1);
    assertThat(CudaKernels.mqpRounds(14336, false, 132)).isEqualTo(1);
    assertThat(MgemvSplits.MQ_WIDE_UNITS_PAIRED.units()).isTrue();
    assertThat(MgemvSplits.MQ_WIDE_UNITS_PAIRED.unitsPaired()).isTrue();
    assertThat(MgemvSplits.MQ_WIDE_UNITS.unitsPaired()).isFalse();
    assertThat(MgemvSplits.MQ_WIDE_UNITS_PAIRED.tiledRows())
        .isEqualTo(MgemvSplits.MQ_WIDE.tiledRows());
    assertThat(MgemvSplits.MQ_WIDE_UNITS_PAIRED.wideRows())
        .isEqualTo(MgemvSplits.MQ_WIDE.wideRows());
  }

  @Test
  void theDefaultGivesTheTiledProductsUpToTheKernelLimit() {
    // measured in session 14: 17-32 rows on the tiled kernels beat F16 tiles + cuBLASLt 2.5-3.3x
    // in whole 8B decode steps, so the default must not fall back to the tiles there; session 17:
    // the tall INT4 products of 1-8 rows on K8U4; session 18: one row staged
    assertThat(MgemvSplits.DEFAULT).isEqualTo(MgemvSplits.MQ_WIDE);
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
                      || policy == MgemvSplits.MQ_STAGED_K8
                      || policy == MgemvSplits.MQ_STAGED_K16
                      || policy == MgemvSplits.MQ_STAGED
                      || policy.name().startsWith("MQ_WIDE")
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
                (policy == MgemvSplits.MQ_32_TALL_INT4_K8U4
                        || policy == MgemvSplits.MQ_STAGED
                        || policy.name().startsWith("MQ_WIDE"))
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
  void theStagedPoliciesStageEveryProductOfUpToEightRowsAndAreMq32Above() {
    for (MqCodes codes : MqCodes.values()) {
      for (int out : new int[] {1024, 4096, 14336, 128256}) {
        for (int n = 1; n <= 8; n++) {
          assertThat(MgemvSplits.MQ_STAGED_K8.tiled(out, n, codes)).isEqualTo(MqVariant.K8S8);
          assertThat(MgemvSplits.MQ_STAGED_K16.tiled(out, n, codes)).isEqualTo(MqVariant.K16S4);
        }
        for (int n = 9; n <= CudaKernels.MQ_ROWS; n++) {
          assertThat(MgemvSplits.MQ_STAGED_K8.tiled(out, n, codes))
              .isEqualTo(MgemvSplits.MQ_32.tiled(out, n, codes));
        }
      }
    }
  }

  @Test
  void theMixedStagedPolicyStagesOneRowBelowTheHeadAndIsTheTallInt4PolicyElsewhere() {
    MgemvSplits p = MgemvSplits.MQ_STAGED;
    for (MqCodes codes : MqCodes.values()) {
      assertThat(p.tiled(4096, 1, codes)).isEqualTo(MqVariant.K16S4);
      assertThat(p.tiled(6144, 1, codes)).isEqualTo(MqVariant.K16S4);
      assertThat(p.tiled(14336, 1, codes)).isEqualTo(MqVariant.K16S4);
      assertThat(p.tiled(128256, 1, codes)).isEqualTo(MqVariant.K8U4);
      for (int n = 2; n <= CudaKernels.MQ_ROWS; n++) {
        for (int out : new int[] {4096, 14336, 128256}) {
          assertThat(p.tiled(out, n, codes))
              .isEqualTo(MgemvSplits.MQ_32_TALL_INT4_K8U4.tiled(out, n, codes));
        }
      }
    }
  }

  @Test
  void theComparedWidePoliciesDifferFromSession28sDefaultOnlyInTheOneRowProductsBelowTheHead() {
    for (MqCodes codes : MqCodes.values()) {
      for (int out : new int[] {1024, 4096, 6144, 14336, 28672, 128256}) {
        for (int n = 1; n <= CudaKernels.MQ_ROWS; n++) {
          MqVariant base = MgemvSplits.MQ_WIDE_K16S4.tiled(out, n, codes);
          boolean oneRow = n == 1 && out < MgemvSplits.HEAD_ROWS;
          assertThat(MgemvSplits.MQ_WIDE_K8S4.tiled(out, n, codes))
              .isEqualTo(oneRow ? MqVariant.K8S4 : base);
          assertThat(MgemvSplits.MQ_WIDE_TALL_K8S4.tiled(out, n, codes))
              .isEqualTo(oneRow && out >= MgemvSplits.TALL_ROWS ? MqVariant.K8S4 : base);
        }
      }
    }
  }

  @Test
  void stagedSplitsTakeEightRowsAndSizeTheirSharedMemoryFromTheLaunch() {
    assertThat(MqVariant.K8S8.takes(8)).isTrue();
    assertThat(MqVariant.K8S8.takes(9)).isFalse();
    assertThat(MqVariant.K16S4.takes(0)).isFalse();
    assertThat(MqVariant.K8S8.staged()).isTrue();
    assertThat(MqVariant.K8U4.staged()).isFalse();
    assertThat(MqVariant.K8U4.sharedBytes(4096, 1, 32, false)).isZero();
    // ring 8 x 8 warps x 512, table 32 groups x 8 x 16, one F16 row, zeros, 8 x 8 sums
    assertThat(MqVariant.K8S8.sharedBytes(4096, 1, 32, false))
        .isEqualTo(32768 + 4096 + 8192 + 128 + 256);
    // gate/up: two streams in the ring and the table
    assertThat(MqVariant.K16S4.sharedBytes(4096, 2, 32, true))
        .isEqualTo(2 * 32768 + 2 * 4096 + 16384 + 128 + 512);
    // depth 4 for eight warps
    assertThat(MqVariant.K8S4.sharedBytes(4096, 1, 32, true))
        .isEqualTo(2 * 16384 + 2 * 4096 + 8192 + 128 + 256);
  }

  @Test
  void aStagedSplitThatDoesNotFitRunsItsUnstagedFallback() {
    int h100 = 232448; // sharedMemPerBlockOptin on sm_90
    // the 8B down projection: 14,336 columns, groups of 128
    assertThat(MqVariant.K8S8.forLaunch(14336, 1, 112, false, h100)).isEqualTo(MqVariant.K8S8);
    assertThat(MqVariant.K8S8.forLaunch(14336, 8, 112, false, h100)).isEqualTo(MqVariant.K8U4);
    assertThat(MqVariant.K16S4.forLaunch(14336, 8, 112, false, h100)).isEqualTo(MqVariant.K16U2);
    assertThat(MqVariant.K16S4.forLaunch(4096, 8, 32, true, h100)).isEqualTo(MqVariant.K16S4);
    assertThat(MqVariant.K16U2.forLaunch(14336, 16, 112, false, 0)).isEqualTo(MqVariant.K16U2);
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
