package io.kvant.cuda.model;

import io.kvant.cuda.device.CudaKernels.MgKind;
import io.kvant.cuda.device.CudaKernels.MgVariant;

/**
 * How the decode products pick the work split of {@code mgemv} and {@code mgemv_fused}. The best
 * split depends on the matrix: {@code CudaBench gemv} on an H200 (perf/RESULTS.md, "GPU, session
 * 6") has 8-bit and 4-bit codes faster with one run in flight per lane (F4U1) on matrices of many
 * rows (14,336 and 128,256 rows of 4,096: INT4 14.8 us against 18.3 for F4U2) and with two (F4U2)
 * on the 4,096-row ones, and one-row BF16 products faster with one feature per warp (F1U4) on 4,096
 * rows (4096x14336: 30.0 us against 41.0 for F2U2).
 */
public enum MgemvSplits {
  /** One split per weight kind (dense F2U2, codes F4U2): the choice of sessions 3-5, to compare. */
  FIXED,
  /** By the matrix's rows, from the measured table above. */
  BY_SHAPE,
  /**
   * As {@link #BY_SHAPE}, but matrices of fewer rows split each row's bytes over the four warps of
   * a block (F4U1K4, dense F2U2K4): four times the warps in flight where one warp per few rows
   * leaves the memory idle.
   */
  SPLIT_K;

  /** What the forward pass uses unless told otherwise. */
  public static final MgemvSplits DEFAULT = BY_SHAPE;

  /** Rows from which a matrix counts as tall (the 8B shape's FFN and output head). */
  static final int TALL_ROWS = 8192;

  /** The split of one {@code out x in} product of {@code kind} ({@code mgemv}). */
  public MgVariant product(MgKind kind, int out) {
    boolean dense = kind == MgKind.BF16 || kind == MgKind.F16;
    if (this == FIXED) {
      return dense ? MgVariant.F2U2 : MgVariant.F4U2;
    }
    if (out >= TALL_ROWS) {
      return dense ? MgVariant.F2U2 : MgVariant.F4U1;
    }
    if (this == SPLIT_K) {
      return dense ? MgVariant.F2U2K4 : MgVariant.F4U1K4;
    }
    return dense ? MgVariant.F1U4 : MgVariant.F4U2;
  }

  /**
   * The split of a fused launch ({@code mgemv_fused}) whose largest matrix has {@code out} rows:
   * one of {@link MgVariant#fused}, the norm-staging one when {@code stagedNorm}.
   */
  public MgVariant fused(MgKind kind, int out, boolean stagedNorm) {
    if (stagedNorm || this == FIXED) {
      return MgVariant.stagingNorm(kind);
    }
    boolean dense = kind == MgKind.BF16 || kind == MgKind.F16;
    if (out >= TALL_ROWS) {
      return dense ? MgVariant.F2U2 : MgVariant.F4U1;
    }
    if (this == SPLIT_K) {
      return dense ? MgVariant.F2U2K4 : MgVariant.F4U1K4;
    }
    return MgVariant.stagingNorm(kind);
  }
}
