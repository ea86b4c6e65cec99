package io.kvant.cuda.driver;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;
import java.util.List;

/**
 * cuBLASLt ({@code libcublasLt.so}) through FFM: the matmul descriptors, layouts, heuristics and
 * {@code cublasLtMatmul} itself. Status codes other than success become {@link CudaException}s
 * naming the call and {@code cublasLtGetStatusString}.
 *
 * <p>Handles (descriptors, layouts, preferences) are addresses; the caller owns their lifetime.
 */
public final class CublasLt {
  /** {@code cudaDataType_t} values used here. */
  public static final int CUDA_R_32F = 0;

  public static final int CUDA_R_16F = 2;
  public static final int CUDA_R_16BF = 14;

  /** Signed 8-bit integers and their int32 products (W8A8 INT8). */
  public static final int CUDA_R_8I = 3;

  public static final int CUDA_R_32I = 10;

  /** FP8 E4M3 ({@code CUDA_R_8F_E4M3}; W8A8 FP8). */
  public static final int CUDA_R_8F_E4M3 = 28;

  /** {@code CUBLAS_COMPUTE_32F}: full FP32 accumulation (no TF32 shortcut). */
  public static final int COMPUTE_32F = 68;

  /** {@code CUBLAS_COMPUTE_32I}: exact int32 accumulation of int8 products. */
  public static final int COMPUTE_32I = 72;

  /** {@code cublasLtMatmulDescAttributes_t}. */
  public static final int DESC_TRANSA = 3;

  public static final int DESC_TRANSB = 4;

  /** {@code CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES}. */
  public static final int PREF_MAX_WORKSPACE_BYTES = 1;

  /** {@code cublasOperation_t}. */
  public static final int OP_N = 0;

  public static final int OP_T = 1;

  /** Bytes of {@code cublasLtMatmulHeuristicResult_t}; its first 64 bytes are the algorithm. */
  public static final int HEURISTIC_RESULT_BYTES = 96;

  public static final int ALGO_BYTES = 64;

  private final NativeLibrary lib;
  private final MethodHandle create;
  private final MethodHandle getVersion;
  private final MethodHandle statusString;
  private final MethodHandle descCreate;
  private final MethodHandle descSet;
  private final MethodHandle descDestroy;
  private final MethodHandle layoutCreate;
  private final MethodHandle layoutDestroy;
  private final MethodHandle prefCreate;
  private final MethodHandle prefSet;
  private final MethodHandle prefDestroy;
  private final MethodHandle heuristic;
  private final MethodHandle matmul;

  private CublasLt(NativeLibrary lib) {
    this.lib = lib;
    create = lib.fn("cublasLtCreate", FunctionDescriptor.of(JAVA_INT, ADDRESS));
    getVersion = lib.fn("cublasLtGetVersion", FunctionDescriptor.of(JAVA_LONG));
    statusString = lib.fn("cublasLtGetStatusString", FunctionDescriptor.of(ADDRESS, JAVA_INT));
    descCreate =
        lib.fn(
            "cublasLtMatmulDescCreate",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
    descSet =
        lib.fn(
            "cublasLtMatmulDescSetAttribute",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_LONG));
    descDestroy = lib.fn("cublasLtMatmulDescDestroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
    layoutCreate =
        lib.fn(
            "cublasLtMatrixLayoutCreate",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG));
    layoutDestroy = lib.fn("cublasLtMatrixLayoutDestroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
    prefCreate = lib.fn("cublasLtMatmulPreferenceCreate", FunctionDescriptor.of(JAVA_INT, ADDRESS));
    prefSet =
        lib.fn(
            "cublasLtMatmulPreferenceSetAttribute",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_LONG));
    prefDestroy =
        lib.fn("cublasLtMatmulPreferenceDestroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
    heuristic =
        lib.fn(
            "cublasLtMatmulAlgoGetHeuristic",
            FunctionDescriptor.of(
                JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_INT,
                ADDRESS, ADDRESS));
    matmul =
        lib.fn(
            "cublasLtMatmul",
            FunctionDescriptor.of(
                JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS));
  }

  /**
   * Opens cuBLASLt from {@code dirs} or the loader's path.
   *
   * @throws CudaUnavailableException if it is not found
   */
  public static CublasLt load(List<Path> dirs) {
    return new CublasLt(
        NativeLibrary.open(
            List.of("libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"),
            dirs,
            Arena.global(),
            "libcublasLt (cuBLASLt)"));
  }

  private String describe(int rc) {
    try {
      MemorySegment s = (MemorySegment) statusString.invokeExact(rc);
      return s.reinterpret(256).getString(0);
    } catch (Throwable t) {
      return "cuBLAS status " + rc;
    }
  }

  void check(int rc, String call) {
    if (rc != 0) {
      throw new CudaException(call, rc, describe(rc));
    }
  }

  /** The library version number, e.g. 130000. */
  public long version() {
    try {
      return (long) getVersion.invokeExact();
    } catch (Throwable t) {
      throw CudaDriver.rethrow(t);
    }
  }

  /** A new cuBLASLt handle. */
  public MemorySegment createHandle() {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment v = a.allocate(ADDRESS);
      check((int) create.invokeExact(v), "cublasLtCreate");
      return v.get(ADDRESS, 0);
    } catch (Throwable t) {
      throw CudaDriver.rethrow(t);
    }
  }

  /** A matmul descriptor with the given compute and scale types and transposes. */
  public MemorySegment matmulDesc(int computeType, int scaleType, int transA, int transB) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment v = a.allocate(ADDRESS);
      check((int) descCreate.invokeExact(v, computeType, scaleType), "cublasLtMatmulDescCreate");
      MemorySegment desc = v.get(ADDRESS, 0);
      MemorySegment op = a.allocate(JAVA_INT);
      op.set(JAVA_INT, 0, transA);
      check(
          (int) descSet.invokeExact(desc, DESC_TRANSA, op, 4L),
          "cublasLtMatmulDescSetAttribute(TRANSA)");
      op.set(JAVA_INT, 0, transB);
      check(
          (int) descSet.invokeExact(desc, DESC_TRANSB, op, 4L),
          "cublasLtMatmulDescSetAttribute(TRANSB)");
      return desc;
    } catch (Throwable t) {
      throw CudaDriver.rethrow(t);
    }
  }

  /** A column-major matrix layout. */
  public MemorySegment layout(int dataType, long rows, long cols, long ld) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment v = a.allocate(ADDRESS);
      check(
          (int) layoutCreate.invokeExact(v, dataType, rows, cols, ld),
          "cublasLtMatrixLayoutCreate(" + rows + "x" + cols + ")");
      return v.get(ADDRESS, 0);
    } catch (Throwable t) {
      throw CudaDriver.rethrow(t);
    }
  }

  /** Destroys a descriptor from {@link #matmulDesc}. */
  public void destroyDesc(MemorySegment desc) {
    try {
      check((int) descDestroy.invokeExact(desc), "cublasLtMatmulDescDestroy");
    } catch (Throwable t) {
      throw CudaDriver.rethrow(t);
    }
  }

  /** Destroys a layout from {@link #layout}. */
  public void destroyLayout(MemorySegment layout) {
    try {
      check((int) layoutDestroy.invokeExact(layout), "cublasLtMatrixLayoutDestroy");
    } catch (Throwable t) {
      throw CudaDriver.rethrow(t);
    }
  }

  /**
   * The best algorithm the heuristic proposes for {@code D = A op B} (C and D share {@code
   * cLayout}), copied into {@code algoOut} ({@link #ALGO_BYTES} bytes).
   *
   * @throws CudaException if the heuristic proposes none
   */
  public void bestAlgorithm(
      MemorySegment handle,
      MemorySegment desc,
      MemorySegment aLayout,
      MemorySegment bLayout,
      MemorySegment cLayout,
      long workspaceBytes,
      MemorySegment algoOut) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment pv = a.allocate(ADDRESS);
      check((int) prefCreate.invokeExact(pv), "cublasLtMatmulPreferenceCreate");
      MemorySegment pref = pv.get(ADDRESS, 0);
      try {
        MemorySegment ws = a.allocate(JAVA_LONG);
        ws.set(JAVA_LONG, 0, workspaceBytes);
        check(
            (int) prefSet.invokeExact(pref, PREF_MAX_WORKSPACE_BYTES, ws, 8L),
            "cublasLtMatmulPreferenceSetAttribute(MAX_WORKSPACE_BYTES)");
        MemorySegment result = a.allocate(HEURISTIC_RESULT_BYTES, 8);
        MemorySegment count = a.allocate(JAVA_INT);
        check(
            (int)
                heuristic.invokeExact(
                    handle, desc, aLayout, bLayout, cLayout, cLayout, pref, 1, result, count),
            "cublasLtMatmulAlgoGetHeuristic");
        if (count.get(JAVA_INT, 0) < 1) {
          throw new CudaException(
              "cublasLtMatmulAlgoGetHeuristic", 15, "no algorithm for this matmul shape and type");
        }
        MemorySegment.copy(result, 0, algoOut, 0, ALGO_BYTES);
      } finally {
        int ignored = (int) prefDestroy.invokeExact(pref);
      }
    } catch (Throwable t) {
      throw CudaDriver.rethrow(t);
    }
  }

  /** {@code D = alpha * op(A) op(B) + beta * C} on {@code stream}; C and D may alias. */
  public void matmul(
      MemorySegment handle,
      MemorySegment desc,
      MemorySegment alpha,
      long a,
      MemorySegment aLayout,
      long b,
      MemorySegment bLayout,
      MemorySegment beta,
      long c,
      MemorySegment cLayout,
      MemorySegment algo,
      long workspace,
      long workspaceBytes,
      MemorySegment stream) {
    try {
      MemorySegment cp = MemorySegment.ofAddress(c);
      check(
          (int)
              matmul.invokeExact(
                  handle,
                  desc,
                  alpha,
                  MemorySegment.ofAddress(a),
                  aLayout,
                  MemorySegment.ofAddress(b),
                  bLayout,
                  beta,
                  cp,
                  cLayout,
                  cp,
                  cLayout,
                  algo,
                  MemorySegment.ofAddress(workspace),
                  workspaceBytes,
                  stream),
          "cublasLtMatmul");
    } catch (Throwable t) {
      throw CudaDriver.rethrow(t);
    }
  }

  /** The library file that was loaded. */
  public String libraryName() {
    return lib.name();
  }
}
