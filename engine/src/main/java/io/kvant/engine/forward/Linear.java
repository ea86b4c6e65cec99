package io.kvant.engine.forward;

import io.kvant.engine.tensor.ComputePool;
import io.kvant.engine.tensor.Tensor;
import io.kvant.engine.tensor.packed.PackedMatrix;
import io.kvant.engine.tensor.packed.QuantizedInput;

/**
 * One weight matrix as the forward pass applies it: the float {@link Tensor}, and its integer
 * repacking when {@link MatmulKernels#INTEGER} was asked for and the type has one.
 */
final class Linear {
  final Tensor tensor;
  final PackedMatrix packed;

  private Linear(Tensor tensor, PackedMatrix packed) {
    this.tensor = tensor;
    this.packed = packed;
  }

  static Linear of(Tensor t, MatmulKernels kernels, WeightPacks packs, ComputePool pool) {
    return new Linear(t, kernels == MatmulKernels.INTEGER ? packs.get(t, pool) : null);
  }

  /** Whether this matrix wants int8 activations. */
  boolean integer() {
    return packed != null;
  }

  /**
   * {@code out = W x} for {@code n} rows; {@code xq} must hold {@code x} quantized when {@link
   * #integer()}.
   */
  void apply(ComputePool pool, float[] x, QuantizedInput xq, int n, float[] out) {
    if (packed == null) {
      pool.matmul(tensor, x, n, out);
      return;
    }
    if ((long) packed.rows() * packed.cols() * n < ComputePool.MIN_PARALLEL_WORK) {
      packed.matmul(xq, out);
      return;
    }
    pool.parallelRanges(packed.panels(), 1, (start, end) -> packed.matmul(xq, out, start, end));
  }
}
