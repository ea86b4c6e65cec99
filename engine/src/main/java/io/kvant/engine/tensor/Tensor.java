package io.kvant.engine.tensor;

import java.lang.foreign.MemorySegment;

/**
 * A read-only 2-D weight matrix {@code W[rows][cols]}, row-major, in one of the {@link DType}
 * storage types: {@code rows} = output features, {@code cols} = input features (a GGUF tensor with
 * dims {@code [ne0, ne1]} has {@code cols = ne0}, {@code rows = ne1}).
 *
 * <p>Implementations are zero-copy views over a little-endian {@link MemorySegment} (typically a
 * slice of a memory-mapped model file; a heap segment works too), are immutable and thread-safe.
 * Create them with {@link Tensors#of}.
 *
 * <p>Numerics of {@link #matmul}: each output element is computed by the same sequence of float
 * operations whatever {@code batch}, {@code rowStart}/{@code rowEnd} or thread split is used, so
 * results are bitwise reproducible across batch compositions and {@link ComputePool} sizes (but not
 * across machines with different vector lengths).
 */
public sealed interface Tensor
    permits F32Tensor,
        F16Tensor,
        BF16Tensor,
        Q8_0Tensor,
        Q4_0Tensor,
        Int8Tensor,
        Int4Tensor,
        Fp8Tensor,
        Q5_0Tensor,
        Q5_1Tensor,
        Q2_KTensor,
        Q3_KTensor,
        Q4_KTensor,
        Q5_KTensor,
        Q6_KTensor {

  /** Number of rows (output features). */
  int rows();

  /** Number of columns (input features). */
  int cols();

  /** Storage type. */
  DType dtype();

  /** Size of {@link #data()} in bytes, {@code dtype().byteSize(rows(), cols())}. */
  long byteSize();

  /**
   * Bytes of all storage: {@link #byteSize()} plus any scales and zero points kept outside {@link
   * #data()} (see {@link DType#hasSideData()}).
   */
  default long storageBytes() {
    return byteSize();
  }

  /** The backing little-endian bytes. */
  MemorySegment data();

  /**
   * Element {@code W[row][col]} as a float (exact for every type, except that K-quants with a min
   * round {@code scale * q - min} once, as ggml does; see {@link DType}).
   */
  float get(int row, int col);

  /**
   * Writes the {@code cols()} values of {@code row} to {@code dst[dstOff .. dstOff + cols())},
   * bitwise equal to {@link #get} of each element (used for embedding lookup).
   */
  void dequantizeRow(int row, float[] dst, int dstOff);

  /**
   * Vectorised {@code out[b*rows + r] = sum_c W[r][c] * x[b*cols + c]} for {@code b} in {@code [0,
   * batch)} and {@code r} in {@code [rowStart, rowEnd)}; other elements of {@code out} are left
   * untouched, so disjoint row ranges may be computed concurrently into the same {@code out}.
   *
   * <p>Each row's weights are read and decoded once per call and applied to all {@code batch}
   * inputs. Floating-point sums use float accumulation in a fixed, vector-length dependent order.
   *
   * @throws IndexOutOfBoundsException if {@code x} has fewer than {@code batch*cols} or {@code out}
   *     fewer than {@code batch*rows} elements, or the row range is not within {@code [0, rows]}
   * @throws IllegalArgumentException if {@code batch < 1}
   */
  void matmul(float[] x, int batch, float[] out, int rowStart, int rowEnd);

  /**
   * Scalar reference for {@link #matmul}, same contract: for each output element a plain float sum
   * of {@code get(r, c) * x[b*cols + c]} in increasing {@code c}. Slow; for tests and benchmarks.
   */
  void matmulScalar(float[] x, int batch, float[] out, int rowStart, int rowEnd);

  /**
   * {@code sum_c W[row][c] * x[xOff + c]} with {@link #matmul}'s arithmetic: the same bits as its
   * element for this row and that input. {@code scratch} (at least {@code cols()} floats) receives
   * the row's values. For a few rows of a large matrix (the output head's refinement), where {@link
   * #matmul} would decode a tile per call.
   *
   * @throws IndexOutOfBoundsException if {@code row} is out of range, or {@code x} or {@code
   *     scratch} is too short
   */
  float dotRow(int row, float[] x, int xOff, float[] scratch);

  /** {@link #matmul} over all rows. */
  default void matmul(float[] x, int batch, float[] out) {
    matmul(x, batch, out, 0, rows());
  }
}
