package io.kvant.engine.format.gguf;

import java.util.Optional;

/**
 * The ggml tensor element types that kvant knows the storage size of, with their on-disk ids (as
 * stored in a GGUF tensor info) and block geometry.
 *
 * <p>A quantized type stores {@link #blockSize()} consecutive elements of the innermost dimension
 * ({@code ne0}) in one block of {@link #bytesPerBlock()} bytes; plain types have a block size of 1.
 * Ids 4, 5 and 31..33, 36..38 belonged to types that ggml has removed and are deliberately absent.
 */
public enum GgmlType {
  F32(0, 1, 4),
  F16(1, 1, 2),
  Q4_0(2, 32, 18),
  Q4_1(3, 32, 20),
  Q5_0(6, 32, 22),
  Q5_1(7, 32, 24),
  Q8_0(8, 32, 34),
  Q8_1(9, 32, 36),
  Q2_K(10, 256, 84),
  Q3_K(11, 256, 110),
  Q4_K(12, 256, 144),
  Q5_K(13, 256, 176),
  Q6_K(14, 256, 210),
  Q8_K(15, 256, 292),
  IQ2_XXS(16, 256, 66),
  IQ2_XS(17, 256, 74),
  IQ3_XXS(18, 256, 98),
  IQ1_S(19, 256, 50),
  IQ4_NL(20, 32, 18),
  IQ3_S(21, 256, 110),
  IQ2_S(22, 256, 82),
  IQ4_XS(23, 256, 136),
  I8(24, 1, 1),
  I16(25, 1, 2),
  I32(26, 1, 4),
  I64(27, 1, 8),
  F64(28, 1, 8),
  IQ1_M(29, 256, 56),
  BF16(30, 1, 2),
  TQ1_0(34, 256, 54),
  TQ2_0(35, 256, 66),
  MXFP4(39, 32, 17);

  private static final int MAX_ID = 39;
  private static final GgmlType[] BY_ID = new GgmlType[MAX_ID + 1];

  static {
    for (GgmlType t : values()) {
      BY_ID[t.id] = t;
    }
  }

  private final int id;
  private final int blockSize;
  private final int bytesPerBlock;

  GgmlType(int id, int blockSize, int bytesPerBlock) {
    this.id = id;
    this.blockSize = blockSize;
    this.bytesPerBlock = bytesPerBlock;
  }

  /** The id ggml and GGUF use for this type. */
  public int id() {
    return id;
  }

  /** Number of elements in one block (1 for unquantized types). */
  public int blockSize() {
    return blockSize;
  }

  /** Bytes one block occupies on disk. */
  public int bytesPerBlock() {
    return bytesPerBlock;
  }

  /** Whether this is a block-quantized type (block size greater than one). */
  public boolean isQuantized() {
    return blockSize > 1;
  }

  /** The type with the given id, or empty for ids that are unknown or removed from ggml. */
  public static Optional<GgmlType> fromId(int id) {
    return id >= 0 && id <= MAX_ID ? Optional.ofNullable(BY_ID[id]) : Optional.empty();
  }

  /**
   * Bytes needed for {@code elementCount} elements of this type.
   *
   * @throws IllegalArgumentException if the count is negative or not a multiple of the block size
   * @throws ArithmeticException if the size overflows a {@code long}
   */
  public long byteSize(long elementCount) {
    if (elementCount < 0 || elementCount % blockSize != 0) {
      throw new IllegalArgumentException(
          elementCount + " elements is not a whole number of " + name() + " blocks");
    }
    return Math.multiplyExact(elementCount / blockSize, (long) bytesPerBlock);
  }
}
