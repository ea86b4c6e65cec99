package io.kvant.cuda.model;

import io.kvant.cuda.device.CudaKernels.MgKind;
import io.kvant.cuda.device.CudaKernels.MgVariant;
import io.kvant.cuda.device.CudaKernels.MqCodes;
import io.kvant.cuda.device.CudaKernels.MqVariant;

/**
 * How the decode products pick the work split of {@code mgemv} and {@code mgemv_fused}. The best
 * split depends on the matrix ({@code CudaBench gemv} on an H200, one row, perf/RESULTS.md "GPU,
 * session 6"): on matrices of many rows (14,336 and 128,256 rows of 4,096) 8-bit and 4-bit codes
 * are fastest with one run in flight per lane (F4U1: INT4 14.9 us against 18.3 for F4U2); on the
 * 4,096-row ones, whose 1,024 warps leave the memory idle, with the four warps of a block splitting
 * each row's bytes (F4U1K4: INT4 5.8 us for 4096x4096 against 7.6, 15.5 for 4096x14336 against
 * 22.7). Whole 8B decode steps, same weights, one run: batch 1 INT4 222.2 tok/s (fixed) -> 230.5
 * (by shape) -> 265.6 (split K), FP8 230.3 -> 231.3 -> 249.0, BF16 179.0 -> 181.6 -> 182.0.
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
  SPLIT_K,
  /**
   * As {@link #SPLIT_K} for coded weights; dense (BF16/F16) weights take four features per warp
   * too: F4U1K4 below {@link #HEAD_ROWS} rows (every layer matrix, and the fused q/k/v and gate/up
   * launches), F4U1 from there (the output head). {@code CudaBench gemv} on an H200, one row, BF16
   * (perf/RESULTS.md, session 7): 4096x4096 10.2 us against 11.7 (F2U2K4), 4096x14336 29.4 against
   * 32.7, 14336x4096 29.6 against 30.4 (F2U2), 128256x4096 235.4 against 243.5.
   */
  SPLIT_K_F4,
  /** As {@link #SPLIT_K_F4}, every tiled 4-bit product on {@code mq4}'s K8U4 split (to compare). */
  MQ_K8U4,
  /** As {@link #SPLIT_K_F4}, every tiled 4-bit product on K16U2 (to compare). */
  MQ_K16U2,
  /** As {@link #SPLIT_K_F4}, every tiled 4-bit product on K16U4 (to compare). */
  MQ_K16U4,
  /**
   * As {@link #SPLIT_K_F4}, with the tiled products ({@code mq4}, {@code mq8}) taking up to 32
   * activation rows (four mmas per weight fragment from 17, on K8U4) where {@link #SPLIT_K_F4}
   * decodes F16 tiles for cuBLASLt from 17. The default since session 14: on an H100 the 8B shape
   * decodes 24 / 32 sequences at 2,805 / 3,147 tok/s in INT4 g128 against 843 / 1,106 with the
   * tiles, FP8 3,065 / 3,506 against 1,056 / 1,381 (perf/RESULTS.md, "GPU, session 14"); up to 16
   * rows the two policies are the same.
   */
  MQ_32,
  /**
   * As {@link #MQ_32}, but 8-bit codes (INT8, Q8_0, FP8 E4M3) take K16U2 at 9-16 rows below {@link
   * #HEAD_ROWS}, where every other policy gives every tiled product K8U4. {@code CudaBench gemv} on
   * an H100, 16 rows (perf/RESULTS.md, "GPU, session 14"), K16U2 against K8U4: INT8 / FP8 4096x4096
   * 9.5 / 9.5 us against 13.0 / 13.9, 4096x14336 29.3 / 29.3 against 35.4 / 40.0, 14336x4096 33.5 /
   * 33.3 against 34.3 / 32.5, the head 254.9 / 252.9 against 226.8 / 219.1 (so not there). In whole
   * 8B INT8 decode steps it is slower (session 15, H100: 2,180.6 against 2,230.6 tok/s at 12
   * sequences, 2,587.9 against 2,698.7 at 16), so it is not the default; kept for comparing ({@code
   * CudaBench decode --splits mq-32,mq-32-k16u2-8bit}).
   */
  MQ_32_K16U2_8BIT,
  /**
   * As {@link #MQ_32}, with the tall tiled products ({@link #TALL_ROWS} rows and more: gate/up with
   * SwiGLU, the output head) of 1-8 rows on K8U4 for every code (to compare).
   */
  MQ_32_TALL_K8U4,
  /**
   * As {@link #MQ_32}, with the tall tiled 4-bit products of 1-8 rows (gate/up with SwiGLU, the
   * output head) on K8U4; 8-bit codes as {@link #MQ_32}. The default in session 17: ncu on an H100
   * (8B shape, one row) showed K16U2's INT4 gate/up + SwiGLU launch at 93 registers, one 512-thread
   * block per SM, 6.8 waves, 1.45 TB/s; on K8U4 (two 256-thread blocks per SM, four chunks in
   * flight per warp) whole 8B INT4 g128 decode steps, same weights, one run: 277.1 -> 293.2 tok/s
   * at 1 sequence, 1,048.7 -> 1,119.7 at 4, 1,971.2 -> 2,030.2 at 8. FP8 E4M3 on K8U4 was level or
   * slower (250.0 -> 248.4, 965.0 -> 964.4, 1,827.0 -> 1,775.8), K16U4 slower for both
   * (perf/RESULTS.md, "Session 17").
   */
  MQ_32_TALL_INT4_K8U4,
  /**
   * As {@link #MQ_32}, with every tiled product of 1-8 rows (every code and height) on the staged
   * split {@link MqVariant#K8S8} (activations in F16, scales and zero points in shared memory, the
   * weights eight chunks ahead through cp.async; where its shared memory does not fit, {@code
   * CudaKernels.mq} runs K8U4).
   */
  MQ_STAGED_K8,
  /** As {@link #MQ_STAGED_K8} on {@link MqVariant#K16S4} (K16U2 where it does not fit). */
  MQ_STAGED_K16,
  /**
   * As {@link #MQ_32_TALL_INT4_K8U4}, with the products of one row below {@link #HEAD_ROWS} on the
   * staged split {@link MqVariant#K16S4} (the output head stays on K8U4); {@code
   * DecodeFusion.PRODUCTS} folds the RMSNorm into those launches. The default since session 18: 8B
   * decode on an H100, same weights, one run, INT4 g128 284.8 -> 311.4 tok/s and FP8 247.8 -> 264.0
   * at one sequence (perf/RESULTS.md, "Session 18"). {@code CudaBench gemv}, one row, INT4 g128:
   * 4096x4096 5.8 us against K16U2's 6.1, 4096x14336 14.7 against 15.7, the head 162.9 against
   * K8U4's 107.5 (so not there); K8S8 for the 14,336-row gate/up was faster alone (17.2 against
   * 20.6 us) but slower in whole steps (272.6 tok/s); at 8 rows the staged splits lose (each block
   * converts eight rows).
   */
  MQ_STAGED,
  /**
   * As {@link #MQ_STAGED}, with tiled products of more than {@link #tiledRows} rows, up to {@link
   * #wideRows}, on {@code mqw} (activations cast to F16 once, staged in shared memory per block of
   * 64 rows; each weight byte read once per 64 rows) where {@link #MQ_STAGED} decodes F16 tiles for
   * cuBLASLt (W8A8, where on, still takes INT8/FP8 first); up to 32 rows the same as {@link
   * #MQ_STAGED}. The default since session 23: 8B decode on an H100, same weights, INT4 g128
   * 1,112.2 -> 2,461.9 tok/s at 33 sequences, 2,120.2 -> 4,272.2 at 64, 3,800.2 -> 5,225.5 at 128;
   * FP8 without W8A8 1,380.7 -> 2,576.3, 2,591.5 -> 4,502.8, 4,516.4 -> 5,664.6 (perf/RESULTS.md,
   * "Session 23"). Since session 29 its one-row 4-bit gate/up launch runs K8S4 ({@link #tiled(int,
   * int, MqCodes)}).
   */
  MQ_WIDE,
  /**
   * As {@link #MQ_WIDE}, but every one-row product below {@link #HEAD_ROWS} on {@link
   * MqVariant#K16S4}, the 4-bit gate/up launch included: the default of sessions 23-28, to compare.
   */
  MQ_WIDE_K16S4,
  /**
   * As {@link #MQ_WIDE_K16S4} with those products on {@link MqVariant#K8S4} (a quarter of K16S4's
   * shared memory per block, so up to four blocks per SM), to compare. Slower in whole steps (8B
   * INT4 g128, one row, H100: 331.4 tok/s against 353.9, session 29).
   */
  MQ_WIDE_K8S4,
  /**
   * As {@link #MQ_WIDE_K16S4} with the tall one-row products ({@link #TALL_ROWS} rows and more
   * below {@link #HEAD_ROWS}: gate/up with SwiGLU) on {@link MqVariant#K8S4} for every code, where
   * {@link #MQ_WIDE} does so for 4-bit codes only; to compare for 8-bit codes. FP8, one row, H100
   * (session 29): 307.0 tok/s between the default's 305.6 and 312.5 in one process (the default run
   * first and last under two names), so not taken.
   */
  MQ_WIDE_TALL_K8S4,
  /**
   * As {@link #MQ_WIDE}, with the one-row products of symmetric INT4 matrices in groups of 128
   * below {@link #HEAD_ROWS} (q/k/v, o, gate/up, down of the 8B shape) on {@code mqp4}: a warp per
   * row pair over the whole width, the input read once for both rows without bank conflicts
   * (tools/gpu/chain_bench.cu's body 2: the chain of the 8B shape's one-row products 1.42x faster
   * than with a warp per row, perf/RESULTS.md, session 35), from second copies of those matrices in
   * its unit layout ({@code MqpUnits}, built when the policy is set: as much device memory as their
   * codes again). To compare (H100, perf/RESULTS.md session 36: 1.035x the step of {@link
   * #MQ_WIDE}); matrices it does not take run as under {@link #MQ_WIDE}.
   */
  MQ_WIDE_UNITS,
  /**
   * As {@link #MQ_WIDE_UNITS}, with each warp of the launches that have two waves of blocks or more
   * (the 8B shape's gate/up) taking two row pairs in turn, so those blocks stage their input (as
   * many bytes as their codes, with the RMSNorm folded in) half as often ({@code
   * CudaKernels.mqpRounds}). Measured no gain (H100, perf/RESULTS.md session 37): 411.2 against
   * {@link #MQ_WIDE_UNITS}' 410.9 tok/s, 395.1 against 398.8 in the other order; gate/up 30.37 us
   * under ncu against 29.82 unpaired (another card). Kept to compare, not taken.
   */
  MQ_WIDE_UNITS_PAIRED;

  /**
   * Most activation rows {@link #MQ_WIDE} gives {@code mqw} (more decode tiles for cuBLASLt). 8B
   * decode on an H100 (perf/RESULTS.md, session 23), `mqw` against the tiles: INT4 g128 1.38x at
   * 128 sequences, 1.17x at 192, 1.05x at 256; FP8 1.25x, 1.06x, 0.95x.
   */
  static final int WIDE_ROWS = 192;

  /** What the forward pass uses unless told otherwise. */
  public static final MgemvSplits DEFAULT = MQ_WIDE;

  /** Rows the tiled products take under every policy but {@link #MQ_32} (two mmas per fragment). */
  static final int TILED_ROWS = 16;

  /**
   * Up to how many activation rows a tiled matrix is multiplied by {@code mq4} / {@code mq8} (more
   * rows decode F16 tiles for cuBLASLt, or take W8A8 when it is on).
   */
  public int tiledRows() {
    return this == MQ_32
            || this == MQ_32_K16U2_8BIT
            || this == MQ_32_TALL_K8U4
            || this == MQ_32_TALL_INT4_K8U4
            || this == MQ_STAGED_K8
            || this == MQ_STAGED_K16
            || this == MQ_STAGED
            || wide()
        ? io.kvant.cuda.device.CudaKernels.MQ_ROWS
        : TILED_ROWS;
  }

  /**
   * Up to how many activation rows a tiled matrix of more than {@link #tiledRows} rows is
   * multiplied by {@code mqw}; 0 when this policy never uses it.
   */
  public int wideRows() {
    return wide() ? WIDE_ROWS : 0;
  }

  /** {@link #MQ_WIDE} or one of the policies that differ from it only in the one-row splits. */
  private boolean wide() {
    return this == MQ_WIDE
        || this == MQ_WIDE_K16S4
        || this == MQ_WIDE_K8S4
        || this == MQ_WIDE_TALL_K8S4
        || units();
  }

  /** Whether one-row INT4 products take {@code mqp4} where their matrices have unit copies. */
  public boolean units() {
    return this == MQ_WIDE_UNITS || this == MQ_WIDE_UNITS_PAIRED;
  }

  /**
   * Whether {@code mqp4}'s larger launches take two row pairs a warp ({@link
   * #MQ_WIDE_UNITS_PAIRED}).
   */
  public boolean unitsPaired() {
    return this == MQ_WIDE_UNITS_PAIRED;
  }

  /** Rows from which a matrix counts as tall (the 8B shape's FFN and output head). */
  static final int TALL_ROWS = 8192;

  /** Rows from which a dense matrix counts as an output head ({@link #SPLIT_K_F4}). */
  static final int HEAD_ROWS = 32768;

  /** The split of one product of {@code out} rows of {@code kind} ({@code mgemv}). */
  public MgVariant product(MgKind kind, int out) {
    return pick(kind, out, MgVariant.F1U4);
  }

  /**
   * The split of a fused launch ({@code mgemv_fused}) whose largest matrix has {@code out} rows:
   * one of {@link MgVariant#fused} (no one-row-per-warp split there: gate/up pairs rows).
   */
  public MgVariant fused(MgKind kind, int out) {
    return pick(kind, out, MgVariant.F2U2);
  }

  /**
   * The split of a tiled 4-bit product ({@code mq4}) of {@code n} activation rows whose largest
   * matrix has {@code out} rows: up to 8 rows, sixteen warps per 16-row tile with two chunks each
   * in flight below {@link #HEAD_ROWS}, eight warps with four chunks for the output head; 9-16 rows
   * (two mmas per fragment, about 100 registers) eight warps with four chunks everywhere. {@code
   * CudaBench gemv} on an H200, INT4 g128 (perf/RESULTS.md, session 8), K16U2 against K8U4: one row
   * 4096x4096 5.7 us against 8.4, 4096x14336 14.8 against 23.3, 14336x4096 17.8 against 17.6,
   * 128256x4096 131.7 against 104.8 (the same order at 4 and 8 rows); 16 rows 14.3 against 9.6,
   * 37.5 against 25.7, 40.1 against 34.6, 316.0 against 243.3. Above 16 rows only K8U4 has kernels
   * ({@link MqVariant#takes}), whatever the policy.
   */
  public MqVariant tiled(int out, int n) {
    if (n > TILED_ROWS) {
      return MqVariant.K8U4;
    }
    if (this == MQ_STAGED || wide()) {
      return n == 1 && out < HEAD_ROWS
          ? oneRowStaged(out)
          : out >= HEAD_ROWS || n > 8 ? MqVariant.K8U4 : MqVariant.K16U2;
    }
    return switch (this) {
      case MQ_K8U4 -> MqVariant.K8U4;
      case MQ_K16U2 -> MqVariant.K16U2;
      case MQ_K16U4 -> MqVariant.K16U4;
      case MQ_32_TALL_K8U4 -> out >= TALL_ROWS || n > 8 ? MqVariant.K8U4 : MqVariant.K16U2;
      case MQ_STAGED_K8 -> n > 8 ? MqVariant.K8U4 : MqVariant.K8S8;
      case MQ_STAGED_K16 -> n > 8 ? MqVariant.K8U4 : MqVariant.K16S4;
      default -> out >= HEAD_ROWS || n > 8 ? MqVariant.K8U4 : MqVariant.K16U2;
    };
  }

  // the staged split of a one-row product of out (< HEAD_ROWS) rows under MQ_STAGED and the wide
  // policies
  private MqVariant oneRowStaged(int out) {
    return switch (this) {
      case MQ_WIDE_K8S4 -> MqVariant.K8S4;
      case MQ_WIDE_TALL_K8S4 -> out >= TALL_ROWS ? MqVariant.K8S4 : MqVariant.K16S4;
      default -> MqVariant.K16S4;
    };
  }

  /**
   * As {@link #tiled(int, int)}, for a product whose weights have {@code codes}: the same split,
   * except under {@link #MQ_32_K16U2_8BIT} for 8-bit codes and {@link #MQ_32_TALL_INT4_K8U4} (and
   * {@link #MQ_STAGED} where it does not stage) for 4-bit codes, and under {@link #MQ_WIDE} for the
   * tall one-row 4-bit products below the head (gate/up with SwiGLU), which take {@link
   * MqVariant#K8S4}: four 256-thread blocks per SM where K16S4's 82 KiB of shared memory allowed
   * two. 8B INT4 g128 decode, one row, H100, same weights, both orders in one process each: 353.9
   * -> 394.7 and 364.7 -> 390.7 tok/s; ncu, that launch alone: 39.7 -> 34.5 us (perf/RESULTS.md,
   * session 29). FP8 moved by less than the order of the passes did, so 8-bit codes keep K16S4. A
   * staged split takes every code.
   */
  public MqVariant tiled(int out, int n, MqCodes codes) {
    MqVariant byShape = tiled(out, n);
    if (byShape.staged()) {
      return (this == MQ_WIDE || units()) && codes == MqCodes.I4 && out >= TALL_ROWS
          ? MqVariant.K8S4
          : byShape;
    }
    if ((this == MQ_32_TALL_INT4_K8U4 || this == MQ_STAGED || wide())
        && codes == MqCodes.I4
        && out >= TALL_ROWS) {
      return MqVariant.K8U4;
    }
    if (this == MQ_32_K16U2_8BIT
        && codes != MqCodes.I4
        && n > 8
        && MqVariant.K16U2.takes(n)
        && out < HEAD_ROWS) {
      return MqVariant.K16U2;
    }
    return byShape;
  }

  private MgVariant pick(MgKind kind, int out, MgVariant shortDense) {
    boolean dense = kind == MgKind.BF16 || kind == MgKind.F16;
    if (this == FIXED) {
      return dense ? MgVariant.F2U2 : MgVariant.F4U2;
    }
    boolean f4 = this != FIXED && this != BY_SHAPE && this != SPLIT_K;
    if (f4 && dense) {
      return out >= HEAD_ROWS ? MgVariant.F4U1 : MgVariant.F4U1K4;
    }
    if (out >= TALL_ROWS) {
      return dense ? MgVariant.F2U2 : MgVariant.F4U1;
    }
    if (this == SPLIT_K || f4) {
      return dense ? MgVariant.F2U2K4 : MgVariant.F4U1K4;
    }
    return dense ? shortDense : MgVariant.F4U2;
  }
}
