package io.kvant.cuda.model;

import io.kvant.cuda.device.CudaKernels;
import io.kvant.cuda.device.Gemm;

/**
 * W8A8 products for many rows: {@code y[n][out] (+)= x[n][in] W^T} with INT8 per-channel or FP8
 * E4M3 weights (per-channel or per-tensor scales, one scale per weight row as uploaded) and F32
 * activations {@code x}, computed as
 *
 * <ol>
 *   <li>{@code w8a8_quantize}: each activation row to codes of the weights' format with its own
 *       dynamic scale ({@code amax / 127} INT8, {@code amax / 448} E4M3);
 *   <li>cuBLASLt on the codes ({@link Gemm#multiplyCodes}: E4M3 x E4M3 with F32 accumulation, INT8
 *       x INT8 with exact int32 accumulation);
 *   <li>{@code w8a8_epilogue}: {@code y[r][c] (+)= acc[r][c] * rowScale[r] * wScale[c]}.
 * </ol>
 *
 * <p>Design note: the F16-tile path decodes the whole weight matrix to F16 every product (one read
 * of the codes, one write and one read of twice their size) before the GEMM; here the GEMM reads
 * the codes as uploaded, and the tensor cores' 8-bit rate is twice their F16 rate on Hopper. The
 * price is the activations' quantization error, which the CPU engine does not have: the products
 * are no longer those of the same artifact on both engines, so the path is an option with a row
 * threshold ({@link QuantizedProducts#setW8a8MinRows}) rather than the rule (docs/DECISIONS.md).
 * The weight rows are padded with zero codes to their stride {@code ldw} (a multiple of 16) and the
 * activation codes are zero past {@code in}, so the GEMM runs over {@code k = ldw}, which meets
 * cuBLASLt's 16-byte rules for any width.
 *
 * <p>Scratch (preallocated by the caller, as a captured graph must not allocate): the row scales
 * and codes ({@link #codeBytes}) and the accumulator, {@code ldAcc} 4-byte elements per row; the
 * rows go through the GEMM in passes of as many as the accumulator holds.
 *
 * <p>Products of one input (a layer's q, k and v; gate and up) quantize it once: a call that says
 * its input is the previous call's ({@code sameInput}) uses the codes and row scales that call left
 * in the scratch, if the input, its shape, the format and the scratch are the same ({@link Codes});
 * otherwise it quantizes. Whoever writes the scratch another way calls {@link #forget} (the
 * session-27 profile: seven quantizations a layer for four inputs, 1.4 ms of a 256-row FP8 step).
 * Not thread-safe: one stream's products, in order.
 */
public final class W8a8Products {
  private final CudaKernels k;
  private final Gemm gemm;

  /**
   * What the scratch's codes and row scales are of: {@code n} rows of {@code in} F32 activations at
   * {@code x}, in format {@code fmt} at stride {@code ldw}, in the scratch at {@code scratch}.
   */
  record Codes(long x, int n, int in, long ldw, int fmt, long scratch) {}

  private Codes held;
  private long quantizations;

  public W8a8Products(CudaKernels kernels, Gemm gemm) {
    this.k = kernels;
    this.gemm = gemm;
  }

  /** Whether W8A8 reads a matrix of these codes: INT8 or FP8 E4M3, one scale per row. */
  public static boolean reads(int bits, int format, int groupsPerRow) {
    return bits == 8
        && groupsPerRow == 1
        && (format == CudaKernels.QF_INT8 || format == CudaKernels.QF_E4M3);
  }

  /**
   * {@link #reads(int, int, int)} of a device tensor (false when it is not quantized, or its codes
   * are tiled: cuBLASLt reads them row-major).
   */
  public static boolean reads(DeviceTensor w) {
    DeviceTensor.DeviceQuant q = w.quant();
    return q != null && !q.tiled() && reads(q.bits(), q.format(), q.groupsPerRow());
  }

  /** Elements per accumulator row: {@code out} rounded up to 4 (16-byte rows). */
  public static int ldAcc(int out) {
    return (out + 3) & ~3;
  }

  /** Bytes of row scales (16-byte aligned) then codes that {@code n} rows of stride ldw take. */
  public static long codeBytes(int n, long ldw) {
    return ((4L * n + 15) & ~15L) + (long) n * ldw;
  }

  /**
   * Rows per GEMM pass that an accumulator of {@code accBytes} holds for {@code out}, at most n.
   */
  public static int rowsPerPass(long accBytes, int out, int n) {
    return (int) Math.min(n, accBytes / (4L * ldAcc(out)));
  }

  /**
   * Whether a product writes its accumulator into {@code y} and scales it there: when it does not
   * accumulate and {@code y}'s rows are whole 16-byte runs at a 16-byte-aligned address.
   */
  static boolean inPlace(boolean accumulate, int out, long y) {
    return !accumulate && out % 4 == 0 && y % 16 == 0;
  }

  /**
   * Whether {@link #multiply} of these arguments (already checked) runs here: the scratch holds the
   * codes and cuBLASLt takes each pass's shape.
   */
  boolean runs(
      int fmt,
      int out,
      long ldw,
      int n,
      long scratchBytes,
      long accBytes,
      long y,
      boolean accumulate) {
    if (scratchBytes < codeBytes(n, ldw) || ldw > Integer.MAX_VALUE) {
      return false;
    }
    int kk = (int) ldw;
    boolean inY = inPlace(accumulate, out, y);
    int ld = inY ? out : ldAcc(out);
    int pass = inY ? n : rowsPerPass(accBytes, out, n);
    return pass >= 1
        && gemm.supportsCodes(fmt, out, kk, pass, ld)
        && (n % pass == 0 || gemm.supportsCodes(fmt, out, kk, n % pass, ld));
  }

  /**
   * The gate and up products and the down product's input codes, with no F32 product in between:
   * {@code x} quantized (or its codes used, as {@link #multiply} does with {@code sameInput}), the
   * two GEMMs' accumulators left in {@code yGate} and {@code yUp} (in place, one pass each), then
   * {@code w8a8_swiglu_quantize}: the codes and row scales of {@code h = silu(gate) * up} (the
   * floats the two epilogues and {@code swiglu} compute) into the scratch at stride {@code
   * ldwDown}, held as the codes of {@code n} rows of {@code hidden} at {@code hKey}. So the down
   * product, called with {@code x = hKey} and {@code sameInput}, uses them, and {@code hKey} itself
   * is never written: the caller must run the down product through W8A8 ({@link #runs}) before
   * anything else touches the scratch. Returns false, having launched nothing, when the two
   * products cannot run in place here or the scratch cannot hold either set of codes.
   *
   * @param w the gate's codes, then the up's ({@code [hidden][ldw]} each)
   * @param colScales the gate's scales, then the up's
   */
  public boolean swigluCodes(
      int fmt,
      long[] w,
      long ldw,
      long[] colScales,
      int hidden,
      int in,
      long x,
      int n,
      long scratch,
      long scratchBytes,
      long yGate,
      long yUp,
      long ldwDown,
      long hKey,
      boolean sameInput) {
    if (n < 1 || in < 1 || ldw < in || ldw % 16 != 0 || ldwDown < hidden || ldwDown % 16 != 0) {
      throw new IllegalArgumentException(
          "w8a8 SwiGLU codes: n " + n + ", in " + in + ", ldw " + ldw + ", ldwDown " + ldwDown);
    }
    if (!reads(8, fmt, 1)) {
      throw new IllegalArgumentException("w8a8 weights are INT8 or FP8 E4M3, got format " + fmt);
    }
    if (!inPlace(false, hidden, yGate)
        || !inPlace(false, hidden, yUp)
        || scratchBytes < codeBytes(n, ldwDown)
        || ldwDown > Integer.MAX_VALUE
        || !runs(fmt, hidden, ldw, n, scratchBytes, 0, yGate, false)) {
      return false;
    }
    long scales = scratch;
    long codes = scratch + ((4L * n + 15) & ~15L);
    quantize(x, n, in, ldw, fmt, scratch, sameInput);
    gemm.multiplyCodes(fmt, w[0], hidden, (int) ldw, codes, n, yGate, hidden);
    gemm.multiplyCodes(fmt, w[1], hidden, (int) ldw, codes, n, yUp, hidden);
    k.w8a8SwigluQuantize(
        yGate,
        yUp,
        hidden,
        fmt == CudaKernels.QF_INT8,
        scales,
        colScales[0],
        colScales[1],
        n,
        hidden,
        codes,
        (int) ldwDown,
        scales,
        fmt);
    quantizations++;
    held = new Codes(hKey, n, hidden, ldwDown, fmt, scratch);
    return true;
  }

  /**
   * Activation quantizations launched so far (a product that shares its input's codes adds none).
   */
  public long quantizations() {
    return quantizations;
  }

  /** Forgets the codes the scratch held: the next product quantizes its input. */
  public void forget() {
    held = null;
  }

  /**
   * The codes and row scales of {@code x} in the scratch ({@link #codeBytes}' layout): quantized
   * there, or left as they are when they already are {@code x}'s and the caller says so.
   */
  private void quantize(long x, int n, int in, long ldw, int fmt, long scratch, boolean sameInput) {
    Codes wanted = new Codes(x, n, in, ldw, fmt, scratch);
    if (!reuses(held, wanted, sameInput)) {
      k.w8a8Quantize(x, n, in, scratch + ((4L * n + 15) & ~15L), (int) ldw, scratch, fmt);
      quantizations++;
    }
    held = wanted;
  }

  /** Whether a product of {@code wanted} may use the codes {@code held} instead of quantizing. */
  static boolean reuses(Codes held, Codes wanted, boolean sameInput) {
    return sameInput && wanted.equals(held);
  }

  /**
   * {@code y (+)= x W^T} for {@code n} rows through W8A8, or nothing and {@code false} when it
   * cannot run here: the scratch is too small, or cuBLASLt refuses a pass's shape (the caller then
   * takes the F16 tiles).
   *
   * @param fmt {@link CudaKernels#QF_INT8} or {@link CudaKernels#QF_E4M3}
   * @param w the codes {@code [out][ldw]}, zero past {@code in}
   * @param colScales the weight's F32 scale per output feature
   * @param x F32 activations {@code [n][in]}
   * @param scratch {@code scratchBytes} for {@link #codeBytes}, 16-byte aligned
   * @param acc {@code accBytes} for the accumulator, 16-byte aligned (unused when the product
   *     {@link #inPlace runs in y})
   * @param y F32 {@code [n][out]}
   * @param sameInput whether {@code x} holds what it held at the previous call (nothing wrote it
   *     since): that call's codes are then used when it quantized the same rows the same way
   */
  public boolean multiply(
      int fmt,
      long w,
      long ldw,
      long colScales,
      int out,
      int in,
      long x,
      int n,
      long scratch,
      long scratchBytes,
      long acc,
      long accBytes,
      long y,
      boolean accumulate,
      boolean sameInput) {
    if (n < 1 || in < 1 || ldw < in || ldw % 16 != 0 || ldw > Integer.MAX_VALUE) {
      throw new IllegalArgumentException(
          "w8a8 product: n "
              + n
              + ", in "
              + in
              + ", ldw "
              + ldw
              + " (ldw >= in, a multiple of 16)");
    }
    if (!reads(8, fmt, 1)) {
      throw new IllegalArgumentException("w8a8 weights are INT8 or FP8 E4M3, got format " + fmt);
    }
    int kk = (int) ldw;
    if (!runs(fmt, out, ldw, n, scratchBytes, accBytes, y, accumulate)) {
      return false;
    }
    // in y, the accumulator is y itself (4-byte elements either way) and there is one pass: the
    // weights are read once however many rows (passes over a scratch re-read them per pass)
    boolean inY = inPlace(accumulate, out, y);
    long a = inY ? y : acc;
    int ld = inY ? out : ldAcc(out);
    int pass = inY ? n : rowsPerPass(accBytes, out, n);
    long scales = scratch;
    long codes = scratch + ((4L * n + 15) & ~15L);
    quantize(x, n, in, ldw, fmt, scratch, sameInput);
    boolean int8 = fmt == CudaKernels.QF_INT8;
    for (int r0 = 0; r0 < n; r0 += pass) {
      int m = Math.min(pass, n - r0);
      gemm.multiplyCodes(fmt, w, out, kk, codes + (long) r0 * kk, m, a, ld);
      k.w8a8Epilogue(
          a, ld, int8, scales + 4L * r0, colScales, y + 4L * r0 * out, out, m, accumulate);
    }
    return true;
  }
}
