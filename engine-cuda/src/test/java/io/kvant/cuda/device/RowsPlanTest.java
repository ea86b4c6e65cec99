package io.kvant.cuda.device;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** {@link CudaKernels#rowsPlanFor}: attention_rows' cover of a decode step's positions. */
class RowsPlanTest {
  private static final int SMS = 132;

  @Test
  void oneRowTakesAWarpPerTileAndBlocksOnlyForLongContexts() {
    // the 8B shape's one-row step in its 256-position bucket: one block per kv head
    assertThat(CudaKernels.rowsPlanFor(1, 8, 256, SMS))
        .isEqualTo(new CudaKernels.RowsPlan(1, 8, 1));
    // 2,048 positions: 64 tiles, a warp each, in eight blocks whose last to arrive merges
    assertThat(CudaKernels.rowsPlanFor(1, 8, 2048, SMS))
        .isEqualTo(new CudaKernels.RowsPlan(8, 8, 1));
    // beyond 64 ranges the warps walk several tiles
    assertThat(CudaKernels.rowsPlanFor(1, 8, 8192, SMS))
        .isEqualTo(new CudaKernels.RowsPlan(8, 8, 4));
    // five positions: one warp
    assertThat(CudaKernels.rowsPlanFor(256, 8, 5, SMS))
        .isEqualTo(new CudaKernels.RowsPlan(1, 1, 1));
  }

  @Test
  void aBlockPerQueryHeadOnlyWithoutKeysPerChannelAndForFewRows() {
    int f16 = CudaKernels.DT_F16;
    // the 8B shape at one row: 32 blocks a step instead of 8
    assertThat(CudaKernels.rowsPerHeadSuits(1, 32, 8, f16, 0, SMS)).isTrue();
    assertThat(CudaKernels.rowsPerHeadSuits(1, 32, 8, CudaKernels.DT_BF16, 0, SMS)).isTrue();
    // eight rows: 256 (row, query head) pairs, within two per multiprocessor; nine: not
    assertThat(CudaKernels.rowsPerHeadSuits(8, 32, 8, f16, 0, SMS)).isTrue();
    assertThat(CudaKernels.rowsPerHeadSuits(9, 32, 8, f16, 0, SMS)).isFalse();
    // codes with token scales (absmax or searched): yes; keys per channel, or one query head per
    // kv head: not
    int i8 = CudaKernels.DT_KV_I8;
    int e4m3 = CudaKernels.DT_KV_E4M3;
    assertThat(CudaKernels.rowsPerHeadSuits(1, 32, 8, i8, 0, SMS)).isTrue();
    assertThat(CudaKernels.rowsPerHeadSuits(1, 32, 8, e4m3, CudaKernels.KV_TOKEN_MSE, SMS))
        .isTrue();
    assertThat(CudaKernels.rowsPerHeadSuits(1, 32, 8, i8, CudaKernels.KV_KEY_CHANNELS, SMS))
        .isFalse();
    assertThat(CudaKernels.rowsPerHeadSuits(1, 8, 8, f16, 0, SMS)).isFalse();
    // planned over the query heads: 2,048 positions at one row in 8 blocks of each of 32 heads,
    // where a block per kv head has 8 of each of 8
    assertThat(CudaKernels.rowsPlanFor(1, 32, 2048, SMS).withBlockPerHead())
        .isEqualTo(new CudaKernels.RowsPlan(8, 8, 1, true));
    assertThat(CudaKernels.rowsPlanFor(1, 32, 256, SMS).withBlockPerHead())
        .isEqualTo(new CudaKernels.RowsPlan(1, 8, 1, true));
  }

  @Test
  void manyRowsKeepEachRowInOneBlock() {
    assertThat(CudaKernels.rowsPlanFor(256, 8, 2048, SMS))
        .isEqualTo(new CudaKernels.RowsPlan(1, 8, 8));
    assertThat(CudaKernels.rowsPlanFor(64, 8, 640, SMS))
        .isEqualTo(new CudaKernels.RowsPlan(1, 8, 3));
  }

  @Test
  void everyPlanCoversItsLengthWithinTheKernelsBounds() {
    SplittableRandom rnd = new SplittableRandom(7);
    for (int i = 0; i < 20_000; i++) {
      int rows = 1 + rnd.nextInt(300);
      int kvHeads = 1 + rnd.nextInt(16);
      int maxLen = 1 + rnd.nextInt(40_000);
      int sms = 1 + rnd.nextInt(200);
      CudaKernels.RowsPlan p = CudaKernels.rowsPlanFor(rows, kvHeads, maxLen, sms);
      String what = "%d rows, %d kv heads, %d positions: %s".formatted(rows, kvHeads, maxLen, p);
      assertThat(p.warps()).as(what).isBetween(1, CudaKernels.ROWS_MAX_WARPS);
      assertThat(p.splits()).as(what).isLessThanOrEqualTo(CudaKernels.MAX_ATTENTION_SPLITS);
      long span = 32L * p.tilesPerWarp();
      assertThat(p.splits() * span).as(what).isGreaterThanOrEqualTo(maxLen);
      // no block without positions at the longest row
      assertThat((p.blocks() - 1) * p.warps() * span).as(what).isLessThan(maxLen);
    }
  }

  @Test
  void refusesEmptySteps() {
    assertThatThrownBy(() -> CudaKernels.rowsPlanFor(0, 8, 256, SMS))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("rows 0");
  }

  @Test
  void takesTheHeadSizesAndCachesItIsCompiledFor() {
    int f16 = CudaKernels.DT_F16;
    assertThat(CudaKernels.attentionRowsTakes(32, 8, 128, f16, 0)).isTrue();
    assertThat(CudaKernels.attentionRowsTakes(9, 3, 64, CudaKernels.DT_KV_I8, 1)).isTrue();
    assertThat(CudaKernels.attentionRowsTakes(8, 4, 32, CudaKernels.DT_KV_E4M3, 0)).isTrue();
    assertThat(CudaKernels.attentionRowsTakes(28, 4, 128, f16, 0)).as("7 per kv head").isFalse();
    assertThat(CudaKernels.attentionRowsTakes(8, 4, 16, f16, 0)).as("head size 16").isFalse();
    assertThat(CudaKernels.attentionRowsTakes(8, 4, 256, f16, 0)).as("head size 256").isFalse();
    assertThat(CudaKernels.attentionRowsTakes(8, 4, 64, CudaKernels.DT_F32, 0)).isFalse();
    int kivi = CudaKernels.KV_KEY_CHANNELS;
    assertThat(CudaKernels.attentionRowsTakes(8, 4, 64, CudaKernels.DT_KV_I8, kivi)).isTrue();
    assertThat(CudaKernels.attentionRowsTakes(8, 4, 64, f16, kivi))
        .as("keys per channel on F16")
        .isFalse();
    assertThat(CudaKernels.attentionRowsTakes(8, 4, 64, f16, CudaKernels.KV_TOKEN_MSE)).isFalse();
    assertThat(
            CudaKernels.attentionRowsTakes(8, 4, 64, CudaKernels.DT_KV_I8, CudaKernels.KV_CENTERED))
        .as("centered keys")
        .isFalse();
  }

  @Test
  void keysPerChannelNeedWholeKvBlocksPerBlock() {
    CudaKernels.RowsPlan oneBlock = new CudaKernels.RowsPlan(1, 3, 1);
    CudaKernels.RowsPlan spans64 = new CudaKernels.RowsPlan(4, 2, 1);
    assertThat(CudaKernels.rowsPlanHoldsWholeBlocks(oneBlock, 128)).isTrue();
    assertThat(CudaKernels.rowsPlanHoldsWholeBlocks(spans64, 16)).isTrue();
    assertThat(CudaKernels.rowsPlanHoldsWholeBlocks(spans64, 64)).isTrue();
    assertThat(CudaKernels.rowsPlanHoldsWholeBlocks(spans64, 128)).isFalse();
  }
}
