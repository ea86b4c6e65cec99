package io.kvant.engine.model;

import io.kvant.engine.tensor.Tensor;

/**
 * One named weight of a model: a matrix (any storage type, full precision or quantized) or a vector
 * (norm weights and biases, always full precision). Code that handles weights by name switches over
 * the two cases, so the compiler checks that both are handled.
 *
 * <p>Equality is identity of the held object (a record over a {@link Tensor} or a {@code float[]}),
 * which is what sharing between versions means: two versions hold the same weight when they hold
 * the same object.
 */
public sealed interface Weight permits Weight.Matrix, Weight.Vector {

  /** Bytes of memory the weight holds (a matrix with its scales). */
  long bytes();

  /**
   * All values, row-major, as floats: a matrix's dequantized (exactly) into a new array, a vector's
   * own array (shared: not to be modified).
   */
  float[] values();

  /** A weight matrix. */
  record Matrix(Tensor tensor) implements Weight {
    public Matrix {
      java.util.Objects.requireNonNull(tensor, "tensor");
    }

    @Override
    public long bytes() {
      return tensor.storageBytes();
    }

    @Override
    public float[] values() {
      float[] out = new float[Math.multiplyExact(tensor.rows(), tensor.cols())];
      for (int r = 0; r < tensor.rows(); r++) {
        tensor.dequantizeRow(r, out, r * tensor.cols());
      }
      return out;
    }
  }

  /** A norm weight or bias vector (full precision). */
  record Vector(float[] values) implements Weight {
    public Vector {
      java.util.Objects.requireNonNull(values, "values");
    }

    @Override
    public long bytes() {
      return 4L * values.length;
    }
  }
}
