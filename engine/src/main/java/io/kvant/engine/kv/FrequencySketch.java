package io.kvant.engine.kv;

/**
 * A count-min sketch of 4-bit saturating counters with periodic halving ("aging"), the frequency
 * estimator of TinyLFU (Einziger, Friedman and Manes, "TinyLFU: A Highly Efficient Cache Admission
 * Policy", 2017; Caffeine's {@code FrequencySketch}). Estimates never undercount between resets;
 * after {@code 10 * width} increments every counter is halved so that old popularity fades.
 */
final class FrequencySketch {
  private static final long[] SEEDS = {
    0x9E3779B97F4A7C15L, 0xC2B2AE3D27D4EB4FL, 0x165667B19E3779F9L, 0xD6E8FEB86659FD93L
  };
  private final byte[][] rows;
  private final int mask;
  private final int sampleSize;
  private int additions;

  /** Sized for about {@code capacity} distinct hot items. */
  FrequencySketch(int capacity) {
    int width = Integer.highestOneBit(Math.max(16, capacity) * 4 - 1) << 1;
    this.rows = new byte[SEEDS.length][width];
    this.mask = width - 1;
    this.sampleSize = 10 * width;
  }

  private int index(long h, int row) {
    long x = (h + SEEDS[row]) * SEEDS[(row + 1) & 3];
    x ^= x >>> 31;
    return (int) x & mask;
  }

  /** Counts one access. */
  void increment(long h) {
    boolean added = false;
    for (int r = 0; r < rows.length; r++) {
      int i = index(h, r);
      if (rows[r][i] < 15) {
        rows[r][i]++;
        added = true;
      }
    }
    if (added && ++additions >= sampleSize) {
      reset();
    }
  }

  /** Estimated accesses, 0 to 15. */
  int frequency(long h) {
    int min = 15;
    for (int r = 0; r < rows.length; r++) {
      min = Math.min(min, rows[r][index(h, r)]);
    }
    return min;
  }

  private void reset() {
    for (byte[] row : rows) {
      for (int i = 0; i < row.length; i++) {
        row[i] = (byte) (row[i] >>> 1);
      }
    }
    additions /= 2;
  }
}
