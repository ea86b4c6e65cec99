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
  /**
   * As {@link #PRODUCTS}, with the RMSNorm folded into them: each warp multiplies the activations
   * it loads by the norm weights, sums their squares on the way (it reads every column once) and
   * scales its dot products by the inverse RMS at the end, so the norm has no launch of its own.
   * (Its first form staged the normalised input in each block's shared memory and was slower.)
   */
  PRODUCTS_AND_NORM;

  /** The mode serving uses. */
  public static final DecodeFusion DEFAULT = PRODUCTS_AND_NORM;
}
