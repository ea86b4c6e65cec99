package io.kvant.cuda.device;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;

import io.kvant.cuda.driver.CublasLt;
import io.kvant.cuda.driver.CudaException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

/**
 * Matrix products of the forward pass through cuBLASLt: {@code y[n][out] (+)= x[n][in] * W^T} for a
 * row-major weight {@code W[out][in]} of type F32, F16 or BF16, the input {@code x} in the weight's
 * type and the output in F32, accumulated in F32 ({@code CUBLAS_COMPUTE_32F}: no TF32, so F32
 * weights give F32-exact-order-independent results within float rounding).
 *
 * <p>cuBLAS is column-major: the row-major {@code W[out][in]} is the column-major {@code in x out}
 * matrix, so {@code y^T = op_T(W) x^T} with {@code W} as A (transposed), {@code x} as B and {@code
 * y} as C/D, all with leading dimension equal to their row-major width.
 *
 * <p>Plans (layouts and the heuristic's algorithm) are cached per (type, out, in, n). Not
 * thread-safe (the engine loop is its only caller).
 */
public final class Gemm implements AutoCloseable {
  private static final long WORKSPACE_BYTES = 32L << 20;

  private final CudaDevice device;
  private final CublasLt lt;
  private final MemorySegment handle;
  private final DeviceBuffer workspace;
  private final MemorySegment one;
  private final MemorySegment zero;
  private final Map<Integer, MemorySegment> descs = new HashMap<>();
  private final Map<Key, Plan> plans = new HashMap<>();
  private final Arena arena = Arena.ofShared();
  // W8A8 products of 8-bit codes (multiplyCodes): plans, descriptors by format, refused shapes
  private final Map<CodeKey, Plan> codePlans = new HashMap<>();
  private final Map<Integer, MemorySegment> codeDescs = new HashMap<>();
  private final Set<CodeKey> refused = new HashSet<>();
  private final MemorySegment oneInt;

  private record Key(int dtype, int out, int in, int n, int ldy) {}

  record CodeKey(int fmt, int out, int k, int n, int ldAcc) {}

  private record Plan(MemorySegment a, MemorySegment b, MemorySegment c, MemorySegment algo) {}

  public Gemm(CudaDevice device) {
    this.device = device;
    this.lt = device.cublas();
    this.handle = lt.createHandle();
    this.workspace = device.allocate(WORKSPACE_BYTES);
    this.one = arena.allocate(JAVA_FLOAT);
    one.set(JAVA_FLOAT, 0, 1f);
    this.zero = arena.allocate(JAVA_FLOAT);
    zero.set(JAVA_FLOAT, 0, 0f);
    this.oneInt = arena.allocate(JAVA_INT);
    oneInt.set(JAVA_INT, 0, 1);
  }

  static int cudaType(int dtype) {
    return switch (dtype) {
      case CudaKernels.DT_F32 -> CublasLt.CUDA_R_32F;
      case CudaKernels.DT_F16 -> CublasLt.CUDA_R_16F;
      case CudaKernels.DT_BF16 -> CublasLt.CUDA_R_16BF;
      default -> throw new IllegalArgumentException("no GEMM for dtype code " + dtype);
    };
  }

  /**
   * {@code y = x W^T} (or {@code y += x W^T} when {@code accumulate}) for {@code n} rows.
   *
   * @param w device address of {@code W[out][in]} in {@code dtype}
   * @param x device address of {@code x[n][in]} in {@code dtype}
   * @param y device address of {@code y[n][out]} in F32
   */
  public void multiply(
      int dtype, long w, int out, int in, long x, int n, long y, boolean accumulate) {
    multiply(dtype, w, out, in, x, n, y, out, accumulate);
  }

  /**
   * As {@link #multiply(int, long, int, int, long, int, long, boolean)} into a column slice of a
   * wider output: row {@code r} of {@code y} starts {@code ldy} floats after row {@code r - 1} (the
   * product of a slice of a weight's output features).
   */
  public void multiply(
      int dtype, long w, int out, int in, long x, int n, long y, int ldy, boolean accumulate) {
    Plan p = plans.computeIfAbsent(new Key(dtype, out, in, n, ldy), this::plan);
    lt.matmul(
        handle,
        desc(dtype),
        one,
        w,
        p.a,
        x,
        p.b,
        accumulate ? one : zero,
        y,
        p.c,
        p.algo,
        workspace.ptr(),
        WORKSPACE_BYTES,
        device.stream());
  }

  private MemorySegment desc(int dtype) {
    return descs.computeIfAbsent(
        dtype,
        t ->
            lt.matmulDesc(CublasLt.COMPUTE_32F, CublasLt.CUDA_R_32F, CublasLt.OP_T, CublasLt.OP_N));
  }

  private Plan plan(Key k) {
    int t = cudaType(k.dtype);
    MemorySegment a = lt.layout(t, k.in, k.out, k.in);
    MemorySegment b = lt.layout(t, k.in, k.n, k.in);
    MemorySegment c = lt.layout(CublasLt.CUDA_R_32F, k.out, k.n, k.ldy);
    MemorySegment algo = arena.allocate(CublasLt.ALGO_BYTES, 8);
    lt.bestAlgorithm(handle, desc(k.dtype), a, b, c, WORKSPACE_BYTES, algo);
    return new Plan(a, b, c, algo);
  }

  /**
   * Whether cuBLASLt multiplies 8-bit codes of format {@code fmt} ({@link CudaKernels#QF_INT8} or
   * {@link CudaKernels#QF_E4M3}) in this shape (see {@link #multiplyCodes}); makes and caches the
   * plan. A shape the heuristic refuses is remembered and answered {@code false} without asking
   * again, so the caller can take another path.
   *
   * @throws IllegalArgumentException for another format, a {@code k} that is not a multiple of 16
   *     or an {@code ldAcc} below {@code out} or not a multiple of 4
   */
  public boolean supportsCodes(int fmt, int out, int k, int n, int ldAcc) {
    CodeKey key = codeKey(fmt, out, k, n, ldAcc);
    if (refused.contains(key)) {
      return false;
    }
    if (codePlans.containsKey(key)) {
      return true;
    }
    Plan p = codePlan(key);
    if (p == null) {
      refused.add(key);
      return false;
    }
    codePlans.put(key, p);
    return true;
  }

  /**
   * {@code acc[n][ldAcc] = x[n][k] W[out][k]^T} of 8-bit codes on the tensor cores, in the "TN"
   * layout FP8 requires ({@code W} row-major is cuBLAS's transposed A, {@code x} row-major its
   * untransposed B): FP8 E4M3 codes accumulate in F32 ({@code acc} F32), INT8 codes in int32
   * ({@code CUBLAS_COMPUTE_32I}, {@code acc} int32, exact). No scales are applied: the caller's
   * epilogue does. Rows of {@code W} and {@code x} are {@code k} bytes apart and both are zero past
   * the real width; {@code W}, {@code x} and {@code acc} 16-byte aligned.
   *
   * @throws IllegalStateException if {@link #supportsCodes} refuses the shape
   */
  public void multiplyCodes(int fmt, long w, int out, int k, long x, int n, long acc, int ldAcc) {
    CodeKey key = codeKey(fmt, out, k, n, ldAcc);
    if (!supportsCodes(fmt, out, k, n, ldAcc)) {
      throw new IllegalStateException("cuBLASLt has no algorithm for the code product " + key);
    }
    Plan p = codePlans.get(key);
    boolean int8 = fmt == CudaKernels.QF_INT8;
    lt.matmul(
        handle,
        codeDesc(fmt),
        int8 ? oneInt : one,
        w,
        p.a,
        x,
        p.b,
        zero, // zero bits are 0 as int32 too
        acc,
        p.c,
        p.algo,
        workspace.ptr(),
        WORKSPACE_BYTES,
        device.stream());
  }

  static CodeKey codeKey(int fmt, int out, int k, int n, int ldAcc) {
    if (fmt != CudaKernels.QF_INT8 && fmt != CudaKernels.QF_E4M3) {
      throw new IllegalArgumentException(
          "code products take INT8 or FP8 E4M3 codes, got format " + fmt);
    }
    if (k <= 0 || k % 16 != 0) {
      throw new IllegalArgumentException("code products need k a multiple of 16, got " + k);
    }
    if (out <= 0 || n <= 0 || ldAcc < out || ldAcc % 4 != 0) {
      throw new IllegalArgumentException(
          "code product shape out " + out + ", n " + n + ", ldAcc " + ldAcc);
    }
    return new CodeKey(fmt, out, k, n, ldAcc);
  }

  private MemorySegment codeDesc(int fmt) {
    return codeDescs.computeIfAbsent(
        fmt,
        f ->
            f == CudaKernels.QF_INT8
                ? lt.matmulDesc(
                    CublasLt.COMPUTE_32I, CublasLt.CUDA_R_32I, CublasLt.OP_T, CublasLt.OP_N)
                : lt.matmulDesc(
                    CublasLt.COMPUTE_32F, CublasLt.CUDA_R_32F, CublasLt.OP_T, CublasLt.OP_N));
  }

  /** The plan of {@code k}, or null when cuBLASLt refuses it (its layouts destroyed). */
  private Plan codePlan(CodeKey k) {
    boolean int8 = k.fmt == CudaKernels.QF_INT8;
    int codeType = int8 ? CublasLt.CUDA_R_8I : CublasLt.CUDA_R_8F_E4M3;
    int accType = int8 ? CublasLt.CUDA_R_32I : CublasLt.CUDA_R_32F;
    MemorySegment a = lt.layout(codeType, k.k, k.out, k.k);
    MemorySegment b = lt.layout(codeType, k.k, k.n, k.k);
    MemorySegment c = lt.layout(accType, k.out, k.n, k.ldAcc);
    MemorySegment algo = arena.allocate(CublasLt.ALGO_BYTES, 8);
    try {
      lt.bestAlgorithm(handle, codeDesc(k.fmt), a, b, c, WORKSPACE_BYTES, algo);
      return new Plan(a, b, c, algo);
    } catch (CudaException e) {
      lt.destroyLayout(a);
      lt.destroyLayout(b);
      lt.destroyLayout(c);
      return null;
    }
  }

  @Override
  public void close() {
    for (Plan p : codePlans.values()) {
      lt.destroyLayout(p.a);
      lt.destroyLayout(p.b);
      lt.destroyLayout(p.c);
    }
    codePlans.clear();
    for (MemorySegment d : codeDescs.values()) {
      lt.destroyDesc(d);
    }
    codeDescs.clear();
    for (Plan p : plans.values()) {
      lt.destroyLayout(p.a);
      lt.destroyLayout(p.b);
      lt.destroyLayout(p.c);
    }
    plans.clear();
    for (MemorySegment d : descs.values()) {
      lt.destroyDesc(d);
    }
    descs.clear();
    workspace.close();
  }
}
