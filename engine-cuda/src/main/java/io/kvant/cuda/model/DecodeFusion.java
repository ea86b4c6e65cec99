package io.kvant.cuda.model;

/**
 * How few-row decode steps group their launches (perf/RESULTS.md has the measurements that chose
 * the default).
 */
public enum DecodeFusion {
  /** Every kernel on its own: RMSNorm, each product, SwiGLU (the reference). */
  OFF,
  /**
   * The products that share an input in one launch ({@code mgemv_fused}: q, k and v; gate and up
   * with SwiGLU in the epilogue), after a separate RMSNorm.
   */
  PRODUCTS,
  /** As {@link #PRODUCTS}, with the RMSNorm too, staged in shared memory by each block. */
  PRODUCTS_AND_NORM;

  /** The mode serving uses. */
  public static final DecodeFusion DEFAULT = PRODUCTS;
}
