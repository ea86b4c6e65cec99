package io.kvant.cuda.device;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Random;
import org.junit.jupiter.api.Test;

/** The query tiles and position splits of attention_tiled, planned on the host (no GPU needed). */
class QueryTilesTest {
  @Test
  void runsOfOneSequenceAreCutEveryTileOfRows() {
    // decode rows of sequences 0 and 1, a 37-row chunk of sequence 2, a 3-row chunk of sequence 0
    int[] rowSeq = new int[2 + 37 + 3];
    rowSeq[1] = 1;
    for (int r = 2; r < 39; r++) {
      rowSeq[r] = 2;
    }
    int[] tiles = CudaKernels.queryTiles(rowSeq, rowSeq.length, 16);
    assertThat(tiles).containsExactly(0, 1, 2, 18, 34, 39, 1, 1, 16, 16, 5, 3);
  }

  @Test
  void everyRowIsInExactlyOneTileOfOneSequence() {
    Random rnd = new Random(7);
    for (int trial = 0; trial < 200; trial++) {
      int n = 1 + rnd.nextInt(300);
      int[] rowSeq = new int[n];
      int seq = 0;
      for (int r = 0; r < n; r++) {
        if (rnd.nextInt(10) == 0) {
          seq = rnd.nextInt(5);
        }
        rowSeq[r] = seq;
      }
      int rowsPerTile = 1 + rnd.nextInt(16);
      int[] tiles = CudaKernels.queryTiles(rowSeq, n, rowsPerTile);
      int count = tiles.length / 2;
      int next = 0;
      for (int t = 0; t < count; t++) {
        int first = tiles[t];
        int rows = tiles[count + t];
        assertThat(first).isEqualTo(next);
        assertThat(rows).isBetween(1, rowsPerTile);
        for (int r = first; r < first + rows; r++) {
          assertThat(rowSeq[r]).isEqualTo(rowSeq[first]);
        }
        next = first + rows;
      }
      assertThat(next).isEqualTo(n);
    }
  }

  @Test
  void decodeStepsSplitTheirPositionsUntilTheBlocksFillTheGpu() {
    // one sequence, 8 kv heads, 1,088 positions on 132 SMs: 8 blocks alone would idle the GPU
    CudaKernels.AttentionSplit one = CudaKernels.splitFor(1, 8, 1088, 132);
    assertThat(one.splits()).isGreaterThan(1);
    assertThat(one.length() % 32).isZero();
    assertThat((long) one.splits() * one.length()).isGreaterThanOrEqualTo(1088);
    assertThat((long) (one.splits() - 1) * one.length()).isLessThan(1088);
    // ranges whole K/V tiles, at least one
    assertThat(one.length()).isGreaterThanOrEqualTo(32);
    // many tiles fill the GPU alone: no split, no partials
    CudaKernels.AttentionSplit many = CudaKernels.splitFor(2048, 8, 1088, 132);
    assertThat(many.splits()).isEqualTo(1);
    assertThat(many.partialFloats(2048, 8, 128)).isZero();
    // short contexts are not split below one tile per range
    assertThat(CudaKernels.splitFor(1, 8, 32, 132).splits()).isEqualTo(1);
    assertThat(CudaKernels.splitFor(1, 8, 40, 132).splits()).isEqualTo(2);
  }
}
