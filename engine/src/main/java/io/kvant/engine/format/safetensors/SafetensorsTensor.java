package io.kvant.engine.format.safetensors;

import java.util.Arrays;
import java.util.Objects;

/**
 * One tensor entry of a safetensors header, validated.
 *
 * @param name tensor name
 * @param dtype element type
 * @param shape dimensions, outermost first (row-major, as safetensors stores them); empty for a
 *     scalar
 * @param offset absolute byte offset of the data from the start of the file
 * @param byteSize bytes of data, equal to {@code elementCount() * dtype.byteSize()}
 */
public record SafetensorsTensor(
    String name, SafetensorsDtype dtype, long[] shape, long offset, long byteSize) {
  /** Copies {@code shape} so the record stays immutable. */
  public SafetensorsTensor {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(dtype, "dtype");
    shape = shape.clone();
  }

  /** A copy of the dimensions, outermost first. */
  @Override
  public long[] shape() {
    return shape.clone();
  }

  /** Number of dimensions. */
  public int rank() {
    return shape.length;
  }

  /** Product of the dimensions (1 for a scalar). */
  public long elementCount() {
    return byteSize / dtype.byteSize();
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof SafetensorsTensor t
        && name.equals(t.name)
        && dtype == t.dtype
        && Arrays.equals(shape, t.shape)
        && offset == t.offset
        && byteSize == t.byteSize;
  }

  @Override
  public int hashCode() {
    return Objects.hash(name, dtype, Arrays.hashCode(shape), offset, byteSize);
  }

  @Override
  public String toString() {
    return name + " " + dtype + Arrays.toString(shape) + " @" + offset + "+" + byteSize;
  }
}
