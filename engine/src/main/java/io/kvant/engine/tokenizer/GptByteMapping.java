package io.kvant.engine.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * GPT-2's reversible mapping between bytes and printable characters, used by byte-level BPE so that
 * every byte sequence is a string of visible characters (a space becomes {@code Ġ}, a newline
 * {@code Ċ}).
 *
 * <p>Bytes that are already printable and not whitespace (33-126, 161-172, 174-255) map to the
 * character with the same code; the remaining 68 bytes map, in increasing order, to U+0100 onward.
 */
final class GptByteMapping {
  private static final char[] BYTE_TO_CHAR = new char[256];
  private static final int[] CHAR_TO_BYTE = new int[256 + 68];

  static {
    Arrays.fill(CHAR_TO_BYTE, -1);
    int next = 256;
    for (int b = 0; b < 256; b++) {
      boolean printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
      char c = (char) (printable ? b : next++);
      BYTE_TO_CHAR[b] = c;
      CHAR_TO_BYTE[c] = b;
    }
  }

  private GptByteMapping() {}

  /** The character standing for byte {@code b} (0-255). */
  static char charOf(int b) {
    return BYTE_TO_CHAR[b];
  }

  /** The byte that {@code c} stands for, or -1 if {@code c} is not in the mapping. */
  static int byteOf(char c) {
    return c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1;
  }

  /** The mapped form of the UTF-8 bytes of {@code text}. */
  static String encode(String text) {
    byte[] utf8 = text.getBytes(StandardCharsets.UTF_8);
    char[] chars = new char[utf8.length];
    for (int i = 0; i < utf8.length; i++) {
      chars[i] = BYTE_TO_CHAR[utf8[i] & 0xFF];
    }
    return new String(chars);
  }
}
