package io.kvant.cuda.device;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;

import io.kvant.cuda.driver.CublasLt;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.HashMap;
import java.util.Map;

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

  private record Key(int dtype, int out, int in, int n, int ldy) {}

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

  @Override
  public void close() {
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
