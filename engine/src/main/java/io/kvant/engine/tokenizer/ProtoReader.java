package io.kvant.engine.tokenizer;

/**
 * A minimal, bounds-checked reader of the protocol-buffer wire format over a byte array slice.
 *
 * <p>Every read checks the slice bounds first, so truncated or corrupt input ends in a {@link
 * TokenizerFormatException} naming the source and offset, never in an out-of-bounds error or a huge
 * allocation. Groups (wire types 3 and 4, deprecated) are rejected.
 */
final class ProtoReader {
  static final int VARINT = 0;
  static final int FIXED64 = 1;
  static final int LENGTH_DELIMITED = 2;
  static final int FIXED32 = 5;

  private final byte[] data;
  private final int limit;
  private final String source;
  private int pos;

  ProtoReader(byte[] data, int from, int to, String source) {
    this.data = data;
    this.pos = from;
    this.limit = to;
    this.source = source;
  }

  boolean hasMore() {
    return pos < limit;
  }

  int position() {
    return pos;
  }

  /** Reads a field key; returns it as {@code field << 3 | wireType}, the field being positive. */
  int readKey() throws TokenizerFormatException {
    int at = pos;
    long key = readVarint();
    long field = key >>> 3;
    if (field == 0 || field > 0x1FFFFFFF) {
      throw error(at, "invalid field number " + field);
    }
    return (int) key;
  }

  static int field(int key) {
    return key >>> 3;
  }

  static int wireType(int key) {
    return key & 7;
  }

  long readVarint() throws TokenizerFormatException {
    int at = pos;
    long value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos >= limit) {
        throw error(at, "truncated varint");
      }
      byte b = data[pos++];
      value |= (long) (b & 0x7F) << shift;
      if (b >= 0) {
        return value;
      }
    }
    throw error(at, "varint longer than 10 bytes");
  }

  /** Reads a varint holding an int32 (negative values are sign-extended to 10 bytes). */
  int readInt32() throws TokenizerFormatException {
    return (int) readVarint();
  }

  float readFloat() throws TokenizerFormatException {
    if (limit - pos < 4) {
      throw error(pos, "truncated fixed32");
    }
    int bits =
        (data[pos] & 0xFF)
            | (data[pos + 1] & 0xFF) << 8
            | (data[pos + 2] & 0xFF) << 16
            | (data[pos + 3] & 0xFF) << 24;
    pos += 4;
    return Float.intBitsToFloat(bits);
  }

  /** Reads a length-delimited field and returns a reader over its contents. */
  ProtoReader readMessage() throws TokenizerFormatException {
    int length = readLength();
    ProtoReader sub = new ProtoReader(data, pos, pos + length, source);
    pos += length;
    return sub;
  }

  /** Reads a length-delimited field as strict UTF-8. */
  String readString(String what) throws TokenizerFormatException {
    int length = readLength();
    String s = TokenizerFiles.utf8(data, pos, length, source, what + " at offset " + pos);
    pos += length;
    return s;
  }

  /** Reads a length-delimited field and returns only its length. */
  int skipBytes() throws TokenizerFormatException {
    int length = readLength();
    pos += length;
    return length;
  }

  /** Skips the value of a field with the given wire type. */
  void skip(int wireType) throws TokenizerFormatException {
    switch (wireType) {
      case VARINT -> readVarint();
      case FIXED64 -> advance(8);
      case LENGTH_DELIMITED -> skipBytes();
      case FIXED32 -> advance(4);
      default -> throw error(pos, "unsupported wire type " + wireType);
    }
  }

  /** Fails unless {@code key} has the expected wire type. */
  void expectWireType(int key, int expected) throws TokenizerFormatException {
    if (wireType(key) != expected) {
      throw error(
          pos,
          "field " + field(key) + " has wire type " + wireType(key) + ", expected " + expected);
    }
  }

  TokenizerFormatException error(int at, String problem) {
    return new TokenizerFormatException(source, problem + " at offset " + at);
  }

  private int readLength() throws TokenizerFormatException {
    int at = pos;
    long length = readVarint();
    if (length < 0 || length > limit - pos) {
      throw error(at, "length " + length + " runs past the end of its message");
    }
    return (int) length;
  }

  private void advance(int n) throws TokenizerFormatException {
    if (limit - pos < n) {
      throw error(pos, "truncated field");
    }
    pos += n;
  }
}
