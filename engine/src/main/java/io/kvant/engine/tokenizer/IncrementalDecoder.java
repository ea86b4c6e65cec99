package io.kvant.engine.tokenizer;

import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.function.IntPredicate;

/**
 * Decodes a stream of token ids into text as it is generated, one id at a time.
 *
 * <p>Tokens carry bytes, not characters: one emoji may be spread over four byte-fallback tokens.
 * {@link #append} therefore returns only the characters that are complete so far and holds back a
 * trailing byte sequence that is still a valid beginning of a multi-byte UTF-8 character. {@link
 * #flush} returns whatever is held back, with invalid bytes as U+FFFD. The concatenation of all
 * {@code append} results and the final {@code flush} equals {@link Tokenizer#decode} of the same
 * ids (for a decoder made by {@link Tokenizer#newDecoder()}).
 *
 * <p>Control tokens produce no text. For SentencePiece-style tokenizers the leading space of the
 * first text token of a sequence, and of the first text token after a BOS, is dropped: it is the
 * "dummy prefix" that encoding added.
 *
 * <p>Not thread-safe; use one decoder per stream.
 */
public final class IncrementalDecoder {
  private final Tokenizer tokenizer;
  private final IntPredicate carriesDummyPrefix;
  private final CharsetDecoder utf8 =
      StandardCharsets.UTF_8
          .newDecoder()
          .onMalformedInput(CodingErrorAction.REPLACE)
          .onUnmappableCharacter(CodingErrorAction.REPLACE);

  /** Bytes of an incomplete character at the end of what was appended (at most 3). */
  private byte[] held = new byte[0];

  /** Whether the next text token's leading space is the dummy prefix to remove. */
  private boolean atTextStart;

  /**
   * @param tokenizer where token bytes and control flags come from
   * @param carriesDummyPrefix tokens whose leading space may be the dummy prefix, or null when the
   *     tokenizer never adds one
   * @param atSequenceStart whether the first appended id starts the sequence
   */
  IncrementalDecoder(
      Tokenizer tokenizer, IntPredicate carriesDummyPrefix, boolean atSequenceStart) {
    this.tokenizer = tokenizer;
    this.carriesDummyPrefix = carriesDummyPrefix;
    this.atTextStart = atSequenceStart && carriesDummyPrefix != null;
  }

  /**
   * Adds one token and returns the text it completes (possibly empty).
   *
   * @throws IndexOutOfBoundsException if {@code id} is not a valid id
   */
  public String append(int id) {
    if (tokenizer.isControl(id)) {
      if (id == tokenizer.bos() && carriesDummyPrefix != null) {
        atTextStart = true;
      }
      return "";
    }
    byte[] bytes = tokenizer.tokenBytes(id);
    if (bytes.length == 0) {
      return "";
    }
    int from = 0;
    if (atTextStart) {
      atTextStart = false;
      if (bytes[0] == ' ' && carriesDummyPrefix.test(id)) {
        from = 1;
      }
    }
    byte[] pending = Arrays.copyOf(held, held.length + bytes.length - from);
    System.arraycopy(bytes, from, pending, held.length, bytes.length - from);
    int complete = completePrefixLength(pending);
    held = Arrays.copyOfRange(pending, complete, pending.length);
    return decode(pending, complete);
  }

  /** Returns the held-back bytes as text (invalid or incomplete sequences as U+FFFD). */
  public String flush() {
    String rest = decode(held, held.length);
    held = new byte[0];
    return rest;
  }

  /**
   * Length of the prefix of {@code bytes} that does not end inside a character that later bytes
   * could still complete. Holding back more than necessary would only delay text; holding back less
   * could split a character, so any trailing lead byte followed only by continuation bytes, fewer
   * than its sequence needs, is held.
   */
  static int completePrefixLength(byte[] bytes) {
    int n = bytes.length;
    for (int i = n - 1; i >= Math.max(0, n - 3); i--) {
      int b = bytes[i] & 0xFF;
      if ((b & 0xC0) == 0x80) {
        continue; // continuation byte: keep looking for its lead byte
      }
      int needed = sequenceLength(b);
      return needed > n - i ? i : n;
    }
    return n;
  }

  /** Bytes in a UTF-8 sequence starting with lead byte {@code b}; 1 for anything else. */
  private static int sequenceLength(int b) {
    if (b >= 0xC2 && b <= 0xDF) {
      return 2;
    }
    if (b >= 0xE0 && b <= 0xEF) {
      return 3;
    }
    if (b >= 0xF0 && b <= 0xF4) {
      return 4;
    }
    return 1;
  }

  private String decode(byte[] bytes, int length) {
    if (length == 0) {
      return "";
    }
    try {
      return utf8.reset().decode(ByteBuffer.wrap(bytes, 0, length)).toString();
    } catch (CharacterCodingException e) {
      // Cannot happen: the decoder replaces malformed input instead of reporting it.
      throw new IllegalStateException(e);
    }
  }
}
