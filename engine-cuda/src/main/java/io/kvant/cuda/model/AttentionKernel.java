package io.kvant.cuda.model;

/**
 * Which kernels a step's attention runs on (perf/RESULTS.md has the measurements that chose the
 * default).
 */
public enum AttentionKernel {
  /**
   * One block per (row, query head), reading its positions straight from the pool ({@code
   * attention}, and {@code attention_wide} when the blocks fit one wave).
   */
  ROWS,
  /**
   * {@code attention_tiled}: K/V staged in shared memory once per tile of up to 16 query vectors
   * (rows of one sequence times the query heads of one kv head), positions split over blocks when
   * the tiles alone do not fill the GPU. Models whose head groups or head size do not fit a tile
   * run {@link #ROWS}.
   */
  TILED,
  /** {@link #TILED}, except decode steps of fewer than {@link #TILED_MIN_DECODE_ROWS} rows. */
  AUTO;

  /** Decode steps of at least this many rows take the tiled kernel under {@link #AUTO}. */
  public static final int TILED_MIN_DECODE_ROWS = 2;

  /** The kernels serving uses. */
  public static final AttentionKernel DEFAULT = AUTO;

  /** Whether a step of {@code rows} rows ({@code decode}: one per sequence) runs tiled. */
  boolean tiled(boolean decode, int rows) {
    return switch (this) {
      case ROWS -> false;
      case TILED -> true;
      case AUTO -> !decode || rows >= TILED_MIN_DECODE_ROWS;
    };
  }
}
