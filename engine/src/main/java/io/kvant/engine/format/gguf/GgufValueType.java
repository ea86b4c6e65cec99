package io.kvant.engine.format.gguf;

import java.util.Optional;

/** The type tags of GGUF metadata values, with their on-disk ids. */
public enum GgufValueType {
  UINT8(0, 1),
  INT8(1, 1),
  UINT16(2, 2),
  INT16(3, 2),
  UINT32(4, 4),
  INT32(5, 4),
  FLOAT32(6, 4),
  BOOL(7, 1),
  /** A {@code uint64} byte length followed by UTF-8 bytes. */
  STRING(8, 8),
  /** A {@code uint32} element type, a {@code uint64} count, then the elements. */
  ARRAY(9, 12),
  UINT64(10, 8),
  INT64(11, 8),
  FLOAT64(12, 8);

  private final int id;
  private final int minEncodedSize;

  GgufValueType(int id, int minEncodedSize) {
    this.id = id;
    this.minEncodedSize = minEncodedSize;
  }

  /** The id stored in the file. */
  public int id() {
    return id;
  }

  /**
   * The fewest bytes one value of this type can occupy in the file (its exact size for fixed-size
   * types). Used to reject element counts that the remaining bytes cannot possibly hold.
   */
  int minEncodedSize() {
    return minEncodedSize;
  }

  /** Whether values of this type are integers (signed or unsigned, any width). */
  public boolean isInteger() {
    return switch (this) {
      case UINT8, INT8, UINT16, INT16, UINT32, INT32, UINT64, INT64 -> true;
      default -> false;
    };
  }

  /** The type with the given id, or empty if the id is unknown. */
  public static Optional<GgufValueType> fromId(long id) {
    for (GgufValueType t : values()) {
      if (t.id == id) {
        return Optional.of(t);
      }
    }
    return Optional.empty();
  }
}
