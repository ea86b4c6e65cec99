package io.kvant.engine.format.gguf;

import io.kvant.engine.format.ModelFormatException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * A little-endian read position over a mapped file that checks every read against the bytes left.
 *
 * <p>Every length or count taken from the file goes through {@link #requireAvailable} before
 * anything is allocated for it, so a hostile length can only cause a {@link ModelFormatException}.
 */
final class GgufCursor {
  static final ValueLayout.OfShort U16 =
      ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  static final ValueLayout.OfInt I32 =
      ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  static final ValueLayout.OfLong I64 =
      ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  static final ValueLayout.OfFloat F32 =
      ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  static final ValueLayout.OfDouble F64 =
      ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  private final Path file;
  private final MemorySegment segment;
  private final long size;
  private long position;

  GgufCursor(Path file, MemorySegment segment) {
    this.file = file;
    this.segment = segment;
    this.size = segment.byteSize();
  }

  Path file() {
    return file;
  }

  MemorySegment segment() {
    return segment;
  }

  long position() {
    return position;
  }

  long remaining() {
    return size - position;
  }

  /**
   * Fails unless {@code count} items of at least {@code itemSize} bytes each fit in the remaining
   * bytes. {@code count} is the raw (possibly huge or, read as unsigned, negative) value.
   */
  void requireAvailable(long count, long itemSize, String what) throws ModelFormatException {
    if (count < 0 || count > remaining() / itemSize) {
      throw new ModelFormatException(
          file,
          what
              + " at offset "
              + position
              + " is "
              + Long.toUnsignedString(count)
              + (itemSize == 1 ? " bytes" : " items of at least " + itemSize + " bytes")
              + ", but only "
              + remaining()
              + " bytes are left in the file ("
              + size
              + " bytes)");
    }
  }

  private long advance(int n, String what) throws ModelFormatException {
    if (remaining() < n) {
      throw new ModelFormatException(
          file,
          "file ends while reading "
              + what
              + " at offset "
              + position
              + " (needs "
              + n
              + " bytes, "
              + remaining()
              + " left)");
    }
    long at = position;
    position += n;
    return at;
  }

  int u8(String what) throws ModelFormatException {
    return Byte.toUnsignedInt(segment.get(ValueLayout.JAVA_BYTE, advance(1, what)));
  }

  byte i8(String what) throws ModelFormatException {
    return segment.get(ValueLayout.JAVA_BYTE, advance(1, what));
  }

  short i16(String what) throws ModelFormatException {
    return segment.get(U16, advance(2, what));
  }

  int i32(String what) throws ModelFormatException {
    return segment.get(I32, advance(4, what));
  }

  long u32(String what) throws ModelFormatException {
    return Integer.toUnsignedLong(i32(what));
  }

  /** A 64-bit value as stored; callers treat negative results as unsigned values above 2^63. */
  long i64(String what) throws ModelFormatException {
    return segment.get(I64, advance(8, what));
  }

  float f32(String what) throws ModelFormatException {
    return segment.get(F32, advance(4, what));
  }

  double f64(String what) throws ModelFormatException {
    return segment.get(F64, advance(8, what));
  }

  /**
   * A GGUF string: {@code uint64} length then that many bytes, decoded as UTF-8 (malformed
   * sequences become U+FFFD rather than failing, as tokenizer vocabularies sometimes hold them).
   */
  String string(String what) throws ModelFormatException {
    long length = i64(what + " length");
    requireAvailable(length, 1, what + " length");
    if (length > Integer.MAX_VALUE - 16) {
      throw new ModelFormatException(
          file, what + " at offset " + position + " is too long (" + length + " bytes)");
    }
    byte[] bytes = new byte[(int) length];
    MemorySegment.copy(segment, ValueLayout.JAVA_BYTE, position, bytes, 0, bytes.length);
    position += length;
    return new String(bytes, StandardCharsets.UTF_8);
  }

  /** Copies {@code count} elements of {@code layout} into {@code array} and advances past them. */
  void copyInto(ValueLayout layout, Object array, int count) {
    MemorySegment.copy(segment, layout, position, array, 0, count);
    position += count * layout.byteSize();
  }
}
