package io.kvant.engine.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/** Writes protocol-buffer wire format, to build small SentencePiece models in tests. */
final class ProtoWriter {
  private final ByteArrayOutputStream out = new ByteArrayOutputStream();

  ProtoWriter varint(int field, long value) {
    key(field, 0);
    rawVarint(value);
    return this;
  }

  ProtoWriter float32(int field, float value) {
    key(field, 5);
    int bits = Float.floatToIntBits(value);
    for (int i = 0; i < 4; i++) {
      out.write(bits >>> (8 * i));
    }
    return this;
  }

  ProtoWriter bytes(int field, byte[] value) {
    key(field, 2);
    rawVarint(value.length);
    out.writeBytes(value);
    return this;
  }

  ProtoWriter string(int field, String value) {
    return bytes(field, value.getBytes(StandardCharsets.UTF_8));
  }

  ProtoWriter message(int field, ProtoWriter message) {
    return bytes(field, message.toByteArray());
  }

  byte[] toByteArray() {
    return out.toByteArray();
  }

  private void key(int field, int wireType) {
    rawVarint(((long) field << 3) | wireType);
  }

  private void rawVarint(long value) {
    while ((value & ~0x7FL) != 0) {
      out.write((int) ((value & 0x7F) | 0x80));
      value >>>= 7;
    }
    out.write((int) value);
  }

  /**
   * A BPE {@code ModelProto} with the given pieces, plus fields the reader must skip (an unknown
   * top-level field, a fixed64, and trainer_spec fields it does not use).
   */
  static byte[] bpeModel(String[] pieces, float[] scores, TokenType[] types) {
    ProtoWriter model = new ProtoWriter();
    for (int i = 0; i < pieces.length; i++) {
      model.message(
          1,
          new ProtoWriter().string(1, pieces[i]).float32(2, scores[i]).varint(3, types[i].code()));
    }
    model.message(
        2,
        new ProtoWriter()
            .string(1, "corpus.txt") // input: skipped
            .varint(3, 2) // model_type = BPE
            .varint(4, pieces.length) // vocab_size: skipped
            .varint(35, 1) // byte_fallback
            .varint(40, 0)
            .varint(41, 1)
            .varint(42, 2)
            .varint(43, -1)); // pad_id = -1, a 10-byte varint: skipped
    model.message(
        3,
        new ProtoWriter()
            .string(1, "identity")
            .varint(3, 1) // add_dummy_prefix
            .varint(4, 0)); // remove_extra_whitespaces = false
    model.message(99, new ProtoWriter().string(1, "unknown field"));
    model.key(100, 1);
    model.out.writeBytes(new byte[8]); // unknown fixed64 field
    return model.toByteArray();
  }
}
