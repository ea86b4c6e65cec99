package io.kvant.engine.tensor;

import java.lang.foreign.MemorySegment;
import java.util.Objects;

/** Factory for {@link Tensor}s. */
public final class Tensors {
  private Tensors() {}

  /**
   * A {@code rows x cols} tensor of {@code type} viewing {@code data} (not copied; little-endian).
   *
   * @throws IllegalArgumentException if a dimension is not positive, {@code cols} is not a multiple
   *     of the type's block size, or {@code data.byteSize() != type.byteSize(rows, cols)}
   */
  public static Tensor of(DType type, int rows, int cols, MemorySegment data) {
    Objects.requireNonNull(type, "type");
    Objects.requireNonNull(data, "data");
    return switch (type) {
      case F32 -> new F32Tensor(rows, cols, data);
      case F16 -> new F16Tensor(rows, cols, data);
      case BF16 -> new BF16Tensor(rows, cols, data);
      case Q8_0 -> new Q8_0Tensor(rows, cols, data);
      case Q4_0 -> new Q4_0Tensor(rows, cols, data);
    };
  }
}
