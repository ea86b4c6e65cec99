package io.kvant.cuda.model;

/**
 * Which kernels a step's attention runs on (perf/RESULTS.md, "GPU, session 5", has the measurements
 * that chose the default).
 */
public enum AttentionKernel {
  /**
   * One block per (row, query head), reading its positions straight from the pool ({@code
   * attention}, and {@code attention_wide} when the blocks fit one wave): for comparing, and for
   * models whose head groups or head size do not fit a tile.
   */
  ROWS,
  /**
   * {@code attention_tiled}: K/V staged in shared memory once per tile of up to 16 query vectors
   * (rows of one sequence times the query heads of one kv head), positions split over blocks when
   * the tiles alone do not fill the GPU; prefill chunks and decode steps alike. Models whose head
   * groups or head size do not fit a tile run {@link #ROWS}.
   */
  TILED;

  /** The kernels serving uses. */
  public static final AttentionKernel DEFAULT = TILED;
}
