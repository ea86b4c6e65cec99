package io.kvant.cuda.device;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Random;
import org.junit.jupiter.api.Test;

/** The query tiles of attention_tiled, built on the host (no GPU needed). */
class PrefillTilesTest {
  @Test
  void runsOfOneSequenceAreCutEverySixteenRows() {
    // decode rows of sequences 0 and 1, a 37-row chunk of sequence 2, a 3-row chunk of sequence 0
    int[] rowSeq = new int[2 + 37 + 3];
    rowSeq[1] = 1;
    for (int r = 2; r < 39; r++) {
      rowSeq[r] = 2;
    }
    int[] tiles = CudaKernels.prefillTiles(rowSeq, rowSeq.length);
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
      int[] tiles = CudaKernels.prefillTiles(rowSeq, n);
      int count = tiles.length / 2;
      int next = 0;
      for (int t = 0; t < count; t++) {
        int first = tiles[t];
        int rows = tiles[count + t];
        assertThat(first).isEqualTo(next);
        assertThat(rows).isBetween(1, CudaKernels.TILE_ROWS);
        for (int r = first; r < first + rows; r++) {
          assertThat(rowSeq[r]).isEqualTo(rowSeq[first]);
        }
        next = first + rows;
      }
      assertThat(next).isEqualTo(n);
    }
  }
}
