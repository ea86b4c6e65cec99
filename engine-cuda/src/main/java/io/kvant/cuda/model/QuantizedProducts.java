package io.kvant.cuda.model;

import io.kvant.cuda.device.CudaKernels;
import io.kvant.cuda.device.Gemm;

/**
 * Matrix products with quantized weights: {@code y[n][out] (+)= x[n][in] W^T}, {@code x} in F32.
 *
 * <p>Design note: for few rows ({@link #MGEMV_MAX_ROWS}; {@link #GEMV_MAX_ROWS} for layouts only
 * the general kernels read) the weight-only kernels ({@code mgemv}, else {@code qgemv8}/{@code
 * qgemv4}) read each code byte once per pass, decode in registers and accumulate in F32, with the
 * activations in F32 (they are small next to the weights). Many rows (prefill, large batches) are
 * compute-bound: there the weights are decoded tile by tile into F16 and multiplied on the tensor
 * cores by cuBLASLt (activations cast to F16, F32 accumulation), the decode costing one extra pass
 * over the tile per step, which the GEMM's arithmetic amortises. F16 rather than BF16 tiles: three
 * more mantissa bits, which kept GPU perplexities within 0.2% of the CPU engine's where BF16 tiles
 * did not (perf/RESULTS.md). The tile is preallocated (a captured graph may contain these products
 * and must not allocate).
 *
 * <p>Weights in a tiled layout ({@link QuantizedLayout}: every Llama-shaped INT4, Q4_0, INT8, Q8_0
 * and FP8 E4M3 matrix, unless W8A8 keeps 8-bit codes row-major) take {@code mq4} / {@code mq8} for
 * up to {@link MgemvSplits#tiledRows} rows instead: the codes decoded in registers straight into
 * the tensor cores' fragments, one mma per fragment for all rows, the activations rounded to F16
 * (W4A16, W8A16). On an H200 (perf/RESULTS.md, session 8) mq4 matches mgemv at one row, is 2-5x
 * faster at four and eight, where mgemv's work grows with the rows, and 2.7-5.5x faster than the
 * F16 tiles at sixteen; mq8's figures are in session 9's section.
 */
final class QuantizedProducts {
  /**
   * Up to this many rows, layouts that {@code mgemv} reads take it (in launches of {@link
   * CudaKernels#MGEMV_ROWS}); above, F16 tiles for cuBLASLt. Chosen by {@code CudaBench gemv} on an
   * H200 (perf/RESULTS.md): at 8 rows mgemv still beats the tiles on every 8B matrix (14336x4096
   * INT8 86 us against 116, INT4 83 against 95), and its time grows with the rows while the tiles'
   * does not.
   */
  static final int MGEMV_MAX_ROWS = 8;

  /** Above this many rows the other layouts decode tiles for cuBLASLt instead of running qgemv. */
  static final int GEMV_MAX_ROWS = 32;

  /** Elements of the F16 tile (32 MiB): big enough that a tile is many GEMM waves. */
  static final long TILE_ELEMENTS = 16L << 20;

  /** Type of the decoded tiles and of the activations cast for them. */
  static final int TILE_TYPE = CudaKernels.DT_F16;

  /** {@link #setW8a8MinRows} value that keeps W8A8 off: every layout keeps its path. */
  static final int W8A8_OFF = Integer.MAX_VALUE;

  private final CudaKernels k;
  private final Gemm gemm;
  private MgemvSplits splits = MgemvSplits.DEFAULT;
  private final W8a8Products w8a8;
  private int w8a8MinRows = W8A8_OFF;
  private long w8a8Runs;
  // mqp4's copies (MgemvSplits.MQ_WIDE_UNITS); null until that policy is first set
  private MqpUnits units;

  QuantizedProducts(CudaKernels kernels, Gemm gemm) {
    this.k = kernels;
    this.gemm = gemm;
    this.w8a8 = new W8a8Products(kernels, gemm);
  }

  /**
   * From this many rows on, INT8 per-channel and FP8 E4M3 weights take {@link W8a8Products}
   * (activations quantized per row, cuBLASLt on the codes) instead of their weight-only kernel or
   * F16 tiles; {@link #W8A8_OFF} (the default) never. Other layouts (INT4, Q4_0, Q8_0, E5M2) are
   * not affected.
   *
   * @throws IllegalArgumentException if {@code rows < 1}
   */
  void setW8a8MinRows(int rows) {
    if (rows < 1) {
      throw new IllegalArgumentException("w8a8MinRows must be >= 1, got " + rows);
    }
    w8a8MinRows = rows;
  }

  int w8a8MinRows() {
    return w8a8MinRows;
  }

  /**
   * Products enqueued through W8A8 so far (counted when enqueued: a captured graph's replays are
   * not counted again).
   */
  long w8a8Runs() {
    return w8a8Runs;
  }

  /**
   * Activation quantizations the W8A8 products launched (fewer than runs where inputs are shared).
   */
  long w8a8Quantizations() {
    return w8a8.quantizations();
  }

  /**
   * A layer's gate and up products of {@code x} and its down product's input codes in W8A8 with no
   * F32 product between them ({@link W8a8Products#swigluCodes}), when all three matrices take W8A8
   * at {@code n} rows in one format and the down product will run there; then the caller must run
   * the down product next with {@code x = yGate} and {@code sameInput} (it finds its codes ready;
   * {@code yGate} holds the gate's accumulators, not h). False, having launched nothing, otherwise:
   * the caller runs the products, SwiGLU and the down product apart.
   *
   * @param xTyped the scratch {@link #multiply} takes, {@code 2 * n * max(in, hidden)} bytes
   * @param tileElements the accumulator scratch {@link #multiply} takes, in F16 elements
   * @param yDown the down product's output
   * @param accumulateDown whether the down product accumulates into it
   */
  boolean swigluCodes(
      DeviceTensor gate,
      DeviceTensor up,
      DeviceTensor down,
      long x,
      int n,
      long yGate,
      long yUp,
      long xTyped,
      long tileElements,
      long yDown,
      boolean accumulateDown,
      boolean sameInput) {
    if (!takesW8a8(gate, n, w8a8MinRows)
        || !takesW8a8(up, n, w8a8MinRows)
        || !takesW8a8(down, n, w8a8MinRows)) {
      return false;
    }
    DeviceTensor.DeviceQuant g = gate.quant();
    DeviceTensor.DeviceQuant u = up.quant();
    DeviceTensor.DeviceQuant d = down.quant();
    int hidden = gate.rows();
    if (g.format() != u.format()
        || g.format() != d.format()
        || g.ldw() != u.ldw()
        || up.rows() != hidden
        || up.cols() != gate.cols()
        || down.cols() != hidden) {
      return false;
    }
    // what the down product's multiply will be given, so that it runs
    long downScratch = 2L * n * hidden;
    if (!w8a8.runs(
        d.format(),
        down.rows(),
        d.ldw(),
        n,
        downScratch,
        2L * tileElements,
        yDown,
        accumulateDown)) {
      return false;
    }
    boolean ran =
        w8a8.swigluCodes(
            g.format(),
            new long[] {gate.ptr(), up.ptr()},
            g.ldw(),
            new long[] {g.scales().ptr(), u.scales().ptr()},
            hidden,
            gate.cols(),
            x,
            n,
            xTyped,
            Math.max(2L * n * gate.cols(), downScratch),
            yGate,
            yUp,
            d.ldw(),
            yGate,
            sameInput);
    if (ran) {
      w8a8Runs += 2;
    }
    return ran;
  }

  /** Something other than these products wrote their scratch: W8A8 quantizes its next input. */
  void forgetW8a8Codes() {
    w8a8.forget();
  }

  /** Whether {@code n} rows of {@code w} take W8A8 under the threshold {@code minRows}. */
  static boolean takesW8a8(DeviceTensor w, int n, int minRows) {
    return n >= minRows && W8a8Products.reads(w);
  }

  /** The unit copies one-row INT4 products take under {@link MgemvSplits#MQ_WIDE_UNITS}. */
  void setUnits(MqpUnits units) {
    this.units = units;
  }

  /** How {@code mgemv} launches pick their work split from now on. */
  void setSplits(MgemvSplits policy) {
    splits = policy;
  }

  /**
   * Whether {@code mgemv} (and the vectorised tile decode) reads this layout: every 16-byte run of
   * codes with one scale, whole runs per row (8-bit: widths a multiple of 16; 4-bit: whole groups
   * of a multiple of 32 columns). Other layouts (odd group sizes, a partial last group, as
   * stories260K's 172-wide FFN in groups of 32) take the general kernels.
   */
  static boolean mgemvReads(DeviceTensor w) {
    DeviceTensor.DeviceQuant q = w.quant();
    if (q.tiled()) {
      return false;
    }
    int g = q.groupSize();
    if (q.bits() == 8) {
      return w.cols() % 16 == 0 && (q.groupsPerRow() == 1 || g % 16 == 0);
    }
    return g % 32 == 0 && w.cols() % g == 0;
  }

  /** Whether {@code w} is in a tiled layout, whose decode kernels are {@code mq4} / {@code mq8}. */
  static boolean tiled(DeviceTensor w) {
    return w.quant().tiled();
  }

  /** The tiled kernels' codes of {@code q}. */
  static CudaKernels.MqCodes codes(DeviceTensor.DeviceQuant q) {
    return q.bits() == 4
        ? CudaKernels.MqCodes.I4
        : CudaKernels.MqCodes.of(CudaKernels.MgKind.ofCodes8(q.format()));
  }

  /**
   * Whether {@code n} rows of this tensor take a weight-only kernel rather than tiles, under the
   * default policy ({@link MgemvSplits#DEFAULT}).
   */
  static boolean weightOnly(DeviceTensor w, int n) {
    return weightOnly(w, n, MgemvSplits.DEFAULT.tiledRows());
  }

  /**
   * Whether {@code n} rows of this tensor take a weight-only kernel rather than tiles when tiled
   * layouts take {@code mq4} / {@code mq8} up to {@code tiledRows} rows.
   */
  static boolean weightOnly(DeviceTensor w, int n, int tiledRows) {
    if (tiled(w)) {
      return n <= tiledRows;
    }
    return n <= (mgemvReads(w) ? MGEMV_MAX_ROWS : GEMV_MAX_ROWS);
  }

  /**
   * Whether {@code n} rows of {@code w} reach the weights as F16 (the tensor-core paths: tiled
   * {@code mq4} and the F16 tiles) rather than F32.
   */
  static boolean halfActivations(DeviceTensor w, int n) {
    return tiled(w) || !weightOnly(w, n);
  }

  /**
   * Whether {@code n} rows of {@code w} take {@code mqw} under {@code policy}: a tiled matrix, more
   * rows than the tiled products take and at most {@link MgemvSplits#wideRows}, groups it reads.
   */
  static boolean takesMqw(DeviceTensor w, int n, MgemvSplits policy) {
    return tiled(w)
        && n > policy.tiledRows()
        && n <= policy.wideRows()
        && CudaKernels.mqwTakes(codes(w.quant()), w.cols(), w.quant().groupShift());
  }

  /** Tile elements needed for the largest of these matrices. */
  static long tileElements(long largestMatrix) {
    return Math.min(TILE_ELEMENTS, largestMatrix);
  }

  /**
   * @param x F32 activations {@code [n][in]}
   * @param xTyped scratch for {@code n * in} F16 activations (W8A8: the row scales and codes)
   * @param tile scratch of {@code tileElements} F16 elements (W8A8: the accumulator)
   * @param sameInput whether {@code x} and {@code xTyped} are as the previous call left them (a
   *     layer's k and v after q, up after gate): W8A8 then uses the codes that call made
   */
  void multiply(
      DeviceTensor w,
      long x,
      long xTyped,
      long tile,
      long tileElements,
      int n,
      long y,
      boolean accumulate,
      boolean sameInput) {
    DeviceTensor.DeviceQuant q = w.quant();
    int out = w.rows();
    int in = w.cols();
    boolean fast = mgemvReads(w);
    if (takesW8a8(w, n, w8a8MinRows)
        && w8a8.multiply(
            q.format(),
            w.ptr(),
            q.ldw(),
            q.scales().ptr(),
            out,
            in,
            x,
            n,
            xTyped,
            2L * n * in,
            tile,
            2L * tileElements,
            y,
            accumulate,
            sameInput)) {
      w8a8Runs++;
      return;
    }
    // the other paths write xTyped (F16 activations) or not; either way its codes are not kept
    w8a8.forget();
    long pairUnits = n == 1 && splits.units() && units != null ? units.pairs(w.ptr()) : 0L;
    if (pairUnits != 0) {
      k.mqp(
          new CudaKernels.MqpMatrix(pairUnits, y, out),
          null,
          null,
          x,
          in,
          accumulate,
          0L,
          0f,
          false,
          k.mqpRounds(out / 2, splits.unitsPaired()));
      return;
    }
    if (tiled(w) && weightOnly(w, n, splits.tiledRows())) {
      k.mq(
          codes(q),
          splits.tiled(out, n, codes(q)),
          new CudaKernels.MgMatrix(w.ptr(), q.scales().ptr(), q.zerosPtr(), y, out),
          null,
          null,
          q.groupShift(),
          q.groupsPerRow(),
          x,
          in,
          n,
          accumulate,
          0L,
          0f,
          false);
      return;
    }
    if (takesMqw(w, n, splits)) {
      k.cast(x, xTyped, CudaKernels.DT_F16, (long) n * in);
      k.mqw(
          codes(q),
          new CudaKernels.MgMatrix(w.ptr(), q.scales().ptr(), q.zerosPtr(), y, out),
          q.groupShift(),
          q.groupsPerRow(),
          xTyped,
          in,
          n,
          accumulate,
          tile,
          2L * tileElements);
      return;
    }
    if (weightOnly(w, n, splits.tiledRows())) {
      int chunk = fast ? CudaKernels.MGEMV_ROWS : CudaKernels.QGEMV_ROWS;
      for (int r0 = 0; r0 < n; r0 += chunk) {
        int m = Math.min(chunk, n - r0);
        long xr = x + 4L * r0 * in;
        long yr = y + 4L * r0 * out;
        if (fast) {
          CudaKernels.MgKind kind =
              q.bits() == 8 ? CudaKernels.MgKind.ofCodes8(q.format()) : CudaKernels.MgKind.I4;
          k.mgemv(
              kind,
              splits.product(kind, out),
              w.ptr(),
              q.ldw(),
              q.scales().ptr(),
              q.zerosPtr(),
              q.groupSize(),
              q.groupsPerRow(),
              xr,
              yr,
              out,
              in,
              m,
              accumulate);
        } else if (q.bits() == 8) {
          k.qgemv8(
              w.ptr(),
              q.ldw(),
              q.scales().ptr(),
              q.groupSize(),
              q.groupsPerRow(),
              q.format(),
              xr,
              yr,
              out,
              in,
              m,
              accumulate);
        } else {
          k.qgemv4(
              w.ptr(),
              q.ldw(),
              q.scales().ptr(),
              q.zerosPtr(),
              q.groupSize(),
              q.groupsPerRow(),
              xr,
              yr,
              out,
              in,
              m,
              accumulate);
        }
      }
      return;
    }
    k.cast(x, xTyped, TILE_TYPE, (long) n * in);
    int step = (int) Math.max(1, Math.min(out, tileElements / in));
    if (step < out && step >= 64) {
      step -= step % 64;
    }
    for (int r0 = 0; r0 < out; r0 += step) {
      int m = Math.min(step, out - r0);
      decodeTile(w, tile, r0, m, fast);
      gemm.multiply(TILE_TYPE, tile, m, in, xTyped, n, y + 4L * r0, out, accumulate);
    }
  }

  private void decodeTile(DeviceTensor w, long tile, int r0, int m, boolean fast) {
    DeviceTensor.DeviceQuant q = w.quant();
    int in = w.cols();
    if (q.tiled()) {
      k.dequantTiled(
          codes(q),
          w.ptr(),
          q.scales().ptr(),
          q.zerosPtr(),
          q.groupShift(),
          q.groupsPerRow(),
          tile,
          TILE_TYPE,
          r0,
          m,
          w.rows(),
          in);
      return;
    }
    if (q.bits() == 8) {
      if (fast) {
        k.dequant8Tile(
            w.ptr(),
            q.ldw(),
            q.scales().ptr(),
            q.groupSize(),
            q.groupsPerRow(),
            q.format(),
            tile,
            TILE_TYPE,
            r0,
            m,
            in);
      } else {
        k.dequant8(
            w.ptr(),
            q.ldw(),
            q.scales().ptr(),
            q.groupSize(),
            q.groupsPerRow(),
            q.format(),
            tile,
            TILE_TYPE,
            r0,
            m,
            in);
      }
    } else if (fast) {
      k.dequant4Tile(
          w.ptr(),
          q.ldw(),
          q.scales().ptr(),
          q.zerosPtr(),
          q.groupSize(),
          q.groupsPerRow(),
          tile,
          TILE_TYPE,
          r0,
          m,
          in);
    } else {
      k.dequant4(
          w.ptr(),
          q.ldw(),
          q.scales().ptr(),
          q.zerosPtr(),
          q.groupSize(),
          q.groupsPerRow(),
          tile,
          TILE_TYPE,
          r0,
          m,
          in);
    }
  }
}
