package io.kvant.engine.tokenizer;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/** File helpers shared by the tokenizer loaders. */
final class TokenizerFiles {
  /**
   * Largest tokenizer file accepted. Real ones are at most a few tens of MB; the cap keeps a wrong
   * path (say, a model's weights) from being read into memory whole.
   */
  static final long MAX_FILE_BYTES = 256L << 20;

  private TokenizerFiles() {}

  /** Reads the whole file, refusing files over {@link #MAX_FILE_BYTES}. */
  static byte[] readAll(Path path) throws IOException {
    long size = Files.size(path);
    if (size > MAX_FILE_BYTES) {
      throw new TokenizerFormatException(
          path.toString(), "file of " + size + " bytes is too large for a tokenizer");
    }
    return Files.readAllBytes(path);
  }

  /** Strict UTF-8 decoding: malformed bytes are an error, not U+FFFD. */
  static String utf8(byte[] data, int offset, int length, String source, String what)
      throws TokenizerFormatException {
    try {
      return StandardCharsets.UTF_8
          .newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT)
          .decode(ByteBuffer.wrap(data, offset, length))
          .toString();
    } catch (CharacterCodingException e) {
      throw new TokenizerFormatException(source, what + " is not valid UTF-8", e);
    }
  }
}
