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
 * </ul>
 *
 * <p>Adding a type: a constant here, a final class implementing {@link Tensor} (plus its {@code
 * permits} entry) and a case in {@link Tensors#of}.
 */
public enum DType {
  F32(1, 4),
  F16(1, 2),
  BF16(1, 2),
  Q8_0(32, 34),
  Q4_0(32, 18);

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
    return (long) rows * (cols / blockSize) * blockBytes;
  }
}
