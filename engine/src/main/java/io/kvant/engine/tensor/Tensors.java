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
      case Q5_0 -> new Q5_0Tensor(rows, cols, data);
      case Q5_1 -> new Q5_1Tensor(rows, cols, data);
      case Q2_K -> new Q2_KTensor(rows, cols, data);
      case Q3_K -> new Q3_KTensor(rows, cols, data);
      case Q4_K -> new Q4_KTensor(rows, cols, data);
      case Q5_K -> new Q5_KTensor(rows, cols, data);
      case Q6_K -> new Q6_KTensor(rows, cols, data);
      case I8, I4, F8_E4M3, F8_E5M2 ->
          throw new IllegalArgumentException(
              type + " keeps scales beside its codes: use Tensors.int8, int4 or fp8");
    };
  }

  /**
   * An {@link DType#I8} per-channel tensor: {@code codes} holds {@code rows*cols} int8 values
   * (viewed, not copied), {@code scales} one finite float per row (copied).
   *
   * @throws IllegalArgumentException on a size mismatch or a non-finite scale
   */
  public static Int8Tensor int8(int rows, int cols, MemorySegment codes, float[] scales) {
    return new Int8Tensor(rows, cols, codes, scales);
  }

  /**
   * An {@link DType#I4} group-wise tensor (layout in {@link Int4Tensor}); {@code zeros} is {@code
   * null} for symmetric groups.
   *
   * @throws IllegalArgumentException on a size mismatch, an odd group size, a non-finite scale or a
   *     zero point outside [0, 15]
   */
  public static Int4Tensor int4(
      int rows, int cols, int groupSize, MemorySegment codes, float[] scales, byte[] zeros) {
    return new Int4Tensor(rows, cols, groupSize, codes, scales, zeros);
  }

  /**
   * An FP8 tensor ({@link DType#F8_E4M3} or {@link DType#F8_E5M2}) with one scale per row, or a
   * single scale for all rows.
   *
   * @throws IllegalArgumentException on a size mismatch, a non-finite scale, or a NaN/infinite code
   */
  public static Fp8Tensor fp8(DType type, int rows, int cols, MemorySegment codes, float[] scales) {
    if (type != DType.F8_E4M3 && type != DType.F8_E5M2) {
      throw new IllegalArgumentException("not an FP8 type: " + type);
    }
    return new Fp8Tensor(type, rows, cols, codes, scales);
  }

  /** Checks {@code count} finite scales and returns a private copy. */
  static float[] checkScales(String what, float[] scales, long count) {
    Objects.requireNonNull(scales, what);
    if (scales.length != count) {
      throw new IllegalArgumentException(what + ": expected " + count + ", got " + scales.length);
    }
    for (int i = 0; i < scales.length; i++) {
      if (!Float.isFinite(scales[i])) {
        throw new IllegalArgumentException(what + ": scale " + i + " is " + scales[i]);
      }
    }
    return scales.clone();
  }
}
