package io.kvant.engine.format.safetensors;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Random;

/** Hand-made safetensors contents for tests. */
final class SafetensorsSamples {
  private SafetensorsSamples() {}

  static byte[] bytes(int n, long seed) {
    byte[] b = new byte[n];
    new Random(seed).nextBytes(b);
    return b;
  }

  /** A file with the given JSON header (unpadded) followed by {@code dataBytes} bytes 0, 1, 2... */
  static byte[] withHeader(String json, int dataBytes) {
    byte[] header = json.getBytes(StandardCharsets.UTF_8);
    ByteBuffer b =
        ByteBuffer.allocate(8 + header.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
    b.putLong(header.length).put(header);
    for (int i = 0; i < dataBytes; i++) {
      b.put((byte) i);
    }
    return b.array();
  }

  /** A small valid file: F32 [2,3], BF16 [4], I8 [5], U8 scalar, with metadata. */
  static SafetensorsWriter writer() {
    return new SafetensorsWriter()
        .metadata("format", "pt")
        .metadata("quantization", "none")
        .add("a.weight", SafetensorsDtype.F32, new long[] {2, 3}, bytes(24, 1))
        .add("b", SafetensorsDtype.BF16, new long[] {4}, bytes(8, 2))
        .add("c", SafetensorsDtype.I8, new long[] {5}, bytes(5, 3))
        .add("scalar", SafetensorsDtype.U8, new long[] {}, bytes(1, 4));
  }
}
