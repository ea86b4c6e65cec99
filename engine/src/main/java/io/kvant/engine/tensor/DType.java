package io.kvant.engine.tensor;

/**
 * Storage type of a {@link Tensor}'s elements.
 *
 * <p>Non-block types store one value per element. Block types store {@link #blockSize()} values in
 * {@link #blockBytes()} bytes (GGUF/ggml layout); a row's columns must then be a multiple of the
 * block size, and blocks never straddle rows.
 *
 * <ul>
 *   <li>{@link #F32}: IEEE binary32, little-endian.
 *   <li>{@link #F16}: IEEE binary16, little-endian.
 *   <li>{@link #BF16}: bfloat16 (the top 16 bits of a binary32), little-endian.
 *   <li>{@link #Q8_0}: 32 values per 34-byte block: fp16 scale {@code d}, then 32 int8 {@code q};
 *       value {@code = d * q}.
 *   <li>{@link #Q4_0}: 32 values per 18-byte block: fp16 scale {@code d}, then 16 bytes whose low
 *       nibbles are elements 0..15 and high nibbles elements 16..31; value {@code = d * (nibble -
 *       8)}.
 *   <li>{@link #I8}: one int8 per element, row-major; a separate float32 scale per row (per-channel
 *       symmetric): value {@code = scale[row] * q}. See {@link Int8Tensor}.
 *   <li>{@link #I4}: two 4-bit codes per byte, each row {@code ceil(cols/2)} bytes, with a separate
 *       float32 scale and optional uint8 zero point per group of input columns: value {@code =
 *       scale * (code - zero)}. See {@link Int4Tensor} for the nibble order and partial groups.
 *   <li>{@link #F8_E4M3}, {@link #F8_E5M2}: one OCP FP8 code per element, row-major, with a
 *       separate float32 scale per row or per tensor: value {@code = scale * fp8(code)}. See {@link
 *       Fp8Tensor}.
 *   <li>{@link #Q5_0}, {@link #Q5_1}: 32 values per block with a 5th bit plane ({@link Q5_0Tensor},
 *       {@link Q5_1Tensor}).
 *   <li>{@link #Q2_K} .. {@link #Q6_K}: ggml's K-quants, 256 values per super-block with 6-bit (or
 *       4-bit, Q2_K; int8, Q6_K) sub-block scales under fp16 super-scales ({@link Q2_KTensor} ..
 *       {@link Q6_KTensor}). The types with a min ({@code Q2_K}, {@code Q4_K}, {@code Q5_K}) decode
 *       as {@code (d * scale) * q - dmin * min} in float, rounded once, as ggml does.
 * </ul>
 *
 * <p>{@link #I8}, {@link #I4} and the FP8 types keep their scales (and zero points) outside {@link
 * Tensor#data()}, which holds only the codes; {@link #byteSize} counts the codes. They are built
 * with the dedicated {@link Tensors} factories, not {@link Tensors#of}.
 *
 * <p>Adding a type: a constant here, a final class implementing {@link Tensor} (plus its {@code
 * permits} entry) and a case in {@link Tensors#of}.
 */
public enum DType {
  F32(1, 4),
  F16(1, 2),
  BF16(1, 2),
  Q8_0(32, 34),
  Q4_0(32, 18),
  I8(1, 1),
  /** Two elements per byte; {@link #byteSize} rounds each row up to whole bytes. */
  I4(1, 1),
  F8_E4M3(1, 1),
  F8_E5M2(1, 1),
  // ggml's 5-bit and K-quant blocks (layouts in their tensor classes)
  Q5_0(32, 22),
  Q5_1(32, 24),
  Q2_K(256, 84),
  Q3_K(256, 110),
  Q4_K(256, 144),
  Q5_K(256, 176),
  Q6_K(256, 210);

  private final int blockSize;
  private final int blockBytes;

  DType(int blockSize, int blockBytes) {
    this.blockSize = blockSize;
    this.blockBytes = blockBytes;
  }

  /** Values per block (1 for non-block types). */
  public int blockSize() {
    return blockSize;
  }

  /** Bytes per block. */
  public int blockBytes() {
    return blockBytes;
  }

  /**
   * Whether the type keeps scales (and zero points) in segments of their own, beside {@link
   * Tensor#data()}: such tensors are made by the typed factories of {@link Tensors}.
   */
  public boolean hasSideData() {
    return this == I8 || this == I4 || this == F8_E4M3 || this == F8_E5M2;
  }

  /** Bits per stored element code (block scales not counted). */
  public int bitsPerElement() {
    return switch (this) {
      case F32 -> 32;
      case F16, BF16 -> 16;
      case Q8_0, I8, F8_E4M3, F8_E5M2 -> 8;
      case Q6_K -> 6;
      case Q5_0, Q5_1, Q5_K -> 5;
      case Q4_0, I4, Q4_K -> 4;
      case Q3_K -> 3;
      case Q2_K -> 2;
    };
  }

  /** Whether values are stored in blocks of more than one element sharing a scale. */
  public boolean isBlockType() {
    return blockSize > 1;
  }

  /**
   * Bytes taken by a {@code rows x cols} matrix of this type.
   *
   * @throws IllegalArgumentException if a dimension is not positive or {@code cols} is not a
   *     multiple of {@link #blockSize()}
   */
  public long byteSize(int rows, int cols) {
    if (rows <= 0 || cols <= 0) {
      throw new IllegalArgumentException(
          "dimensions must be positive: rows=" + rows + " cols=" + cols);
    }
    if (cols % blockSize != 0) {
      throw new IllegalArgumentException(
          name() + " needs cols to be a multiple of " + blockSize + ", got " + cols);
    }
    if (this == I4) {
      return (long) rows * ((cols + 1) / 2);
    }
    return (long) rows * (cols / blockSize) * blockBytes;
  }
}
