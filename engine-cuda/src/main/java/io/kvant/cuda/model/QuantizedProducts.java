package io.kvant.cuda.model;

import io.kvant.cuda.device.CudaKernels;
import io.kvant.cuda.device.Gemm;

/**
 * Matrix products with quantized weights: {@code y[n][out] (+)= x[n][in] W^T}, {@code x} in F32.
 *
 * <p>Design note: for few rows ({@link #WGEMV_MAX_ROWS}; {@link #GEMV_MAX_ROWS} for layouts only
 * the general kernels read) the weight-only kernels ({@code wgemv}, else {@code qgemv8}/{@code
 * qgemv4}) read each code byte once per pass, decode in registers and accumulate in F32, with the
 * activations in F32 (they are small next to the weights). Many rows (prefill, large batches) are
 * compute-bound: there the weights are decoded tile by tile into BF16 and multiplied on the tensor
 * cores by cuBLASLt (activations cast to BF16, F32 accumulation), the decode costing one extra pass
 * over the tile per step, which the GEMM's arithmetic amortises. The tile is preallocated (a
 * captured graph may contain these products and must not allocate).
 */
final class QuantizedProducts {
  /**
   * Above this many rows, layouts that wgemv reads are decoded into BF16 tiles for cuBLASLt. By
   * measurement on an H200 ({@code CudaBench gemv}, perf/RESULTS.md): on a 14336x4096 INT8 matrix
   * wgemv takes 55 us at 1 row, 78 us at 2, 135 us at 4 and 254 us at 8, growing with the rows (its
   * inner loop is bound by instruction issue, not memory), while the fast tile decode plus a BF16
   * GEMM costs about the same at any row count.
   */
  static final int WGEMV_MAX_ROWS = 2;

  /** Above this many rows the other layouts decode tiles for cuBLASLt instead of running qgemv. */
  static final int GEMV_MAX_ROWS = 32;

  /** Elements of the BF16 tile (32 MiB): big enough that a tile is many GEMM waves. */
  static final long TILE_ELEMENTS = 16L << 20;

  private final CudaKernels k;
  private final Gemm gemm;

  QuantizedProducts(CudaKernels kernels, Gemm gemm) {
    this.k = kernels;
    this.gemm = gemm;
  }

  /**
   * Whether {@code wgemv} reads this layout: widths a multiple of 4, every 16-byte run of codes
   * with one scale, and for 4-bit codes whole groups of a multiple of 32 columns. Other layouts
   * (odd group sizes, a partial last group, as stories260K's 172-wide FFN in groups of 32) take the
   * general qgemv kernels.
   */
  static boolean wgemvReads(DeviceTensor w) {
    DeviceTensor.DeviceQuant q = w.quant();
    int g = q.groupSize();
    if (w.cols() % 4 != 0) {
      return false;
    }
    if (q.bits() == 8) {
      return q.groupsPerRow() == 1 || g % 16 == 0;
    }
    return g % 32 == 0 && w.cols() % g == 0;
  }

  /** Tile elements needed for the largest of these matrices. */
  static long tileElements(long largestMatrix) {
    return Math.min(TILE_ELEMENTS, largestMatrix);
  }

  /**
   * @param x F32 activations {@code [n][in]}
   * @param xTyped scratch for {@code n * in} BF16 activations
   * @param tile scratch of {@code tileElements} BF16 elements
   */
  void multiply(
      DeviceTensor w,
      long x,
      long xTyped,
      long tile,
      long tileElements,
      int n,
      long y,
      boolean accumulate) {
    DeviceTensor.DeviceQuant q = w.quant();
    int out = w.rows();
    int in = w.cols();
    boolean wide = wgemvReads(w);
    if (n <= (wide ? WGEMV_MAX_ROWS : GEMV_MAX_ROWS)) {
      for (int r0 = 0; r0 < n; r0 += CudaKernels.QGEMV_ROWS) {
        int m = Math.min(CudaKernels.QGEMV_ROWS, n - r0);
        long xr = x + 4L * r0 * in;
        long yr = y + 4L * r0 * out;
        if (wide) {
          k.wgemv(
              w.ptr(),
              q.ldw(),
              q.scales().ptr(),
              q.zerosPtr(),
              q.groupSize(),
              q.groupsPerRow(),
              q.format(),
              q.bits() == 8 ? CudaKernels.WG_CODES8 : CudaKernels.WG_CODES4,
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
    k.cast(x, xTyped, CudaKernels.DT_BF16, (long) n * in);
    int step = (int) Math.max(1, Math.min(out, tileElements / in));
    if (step < out && step >= 64) {
      step -= step % 64;
    }
    for (int r0 = 0; r0 < out; r0 += step) {
      int m = Math.min(step, out - r0);
      if (q.bits() == 8) {
        k.dequant8(
            w.ptr(),
            q.ldw(),
            q.scales().ptr(),
            q.groupSize(),
            q.groupsPerRow(),
            q.format(),
            tile,
            CudaKernels.DT_BF16,
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
            CudaKernels.DT_BF16,
            r0,
            m,
            in);
      }
      gemm.multiply(CudaKernels.DT_BF16, tile, m, in, xTyped, n, y + 4L * r0, out, accumulate);
    }
  }
}
