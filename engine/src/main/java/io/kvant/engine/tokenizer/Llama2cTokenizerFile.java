package io.kvant.engine.tokenizer;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Reads llama2.c's {@code tokenizer.bin}.
 *
 * <p>Layout (little-endian): int32 {@code max_token_length}, then per token float32 score, int32
 * byte length, and that many UTF-8 bytes. There are no token types and no header count: the caller
 * knows the vocabulary size from the model. The exporter wrote spaces as {@code ' '} rather than
 * {@code ▁}, and BOS/EOS as {@code "\n<s>\n"} / {@code "\n</s>\n"}; both are mapped back here, so
 * pieces look as in the SentencePiece model.
 *
 * <p>Token types are inferred from the pieces: {@code <unk>} is the unknown token, {@code <s>} and
 * {@code </s>} are control tokens and become {@link Tokenizer#bos()} and {@link Tokenizer#eos()},
 * {@code <0xNN>} are byte tokens, all else is normal. The dummy prefix is on, as llama2.c's encoder
 * always adds it.
 */
public final class Llama2cTokenizerFile {
  private Llama2cTokenizerFile() {}

  /**
   * Reads the first {@code vocabSize} tokens of {@code path}; any bytes after them are ignored, as
   * llama2.c does.
   *
   * @throws TokenizerFormatException if the file is truncated or malformed, naming the file
   * @throws IOException if it cannot be read
   * @throws IllegalArgumentException if {@code vocabSize} is not positive
   */
  public static SentencePieceBpeTokenizer read(Path path, int vocabSize) throws IOException {
    if (vocabSize <= 0) {
      throw new IllegalArgumentException("vocabSize must be positive: " + vocabSize);
    }
    return parse(TokenizerFiles.readAll(path), vocabSize, path.toString());
  }

  /** Reads every token in the file (the vocabulary size is however many entries it holds). */
  public static SentencePieceBpeTokenizer read(Path path) throws IOException {
    return parse(TokenizerFiles.readAll(path), -1, path.toString());
  }

  /**
   * Parses the file contents.
   *
   * @param vocabSize tokens to read, or -1 for all up to the end of the data
   */
  static SentencePieceBpeTokenizer parse(byte[] data, int vocabSize, String source)
      throws TokenizerFormatException {
    ByteBuffer in = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
    if (in.remaining() < 4) {
      throw new TokenizerFormatException(source, "truncated header (no max_token_length)");
    }
    int maxTokenLength = in.getInt();
    if (maxTokenLength < 0) {
      throw new TokenizerFormatException(source, "negative max_token_length " + maxTokenLength);
    }
    // Each entry takes at least 8 bytes, which bounds the count before anything is allocated.
    int available = in.remaining() / 8;
    if (vocabSize == 0 || vocabSize < -1) {
      throw new TokenizerFormatException(source, "invalid vocabulary size " + vocabSize);
    }
    if (vocabSize > available) {
      throw new TokenizerFormatException(
          source,
          "truncated: "
              + vocabSize
              + " tokens expected but only "
              + in.remaining()
              + " bytes left");
    }
    int capacity = vocabSize > 0 ? vocabSize : available;
    String[] pieces = new String[capacity];
    float[] scores = new float[capacity];
    int count = 0;
    while (vocabSize > 0 ? count < vocabSize : in.hasRemaining()) {
      if (in.remaining() < 8) {
        throw new TokenizerFormatException(source, "truncated in token " + count);
      }
      scores[count] = in.getFloat();
      int length = in.getInt();
      if (length < 0 || length > maxTokenLength) {
        throw new TokenizerFormatException(
            source,
            "token "
                + count
                + " has length "
                + length
                + " outside [0, max_token_length="
                + maxTokenLength
                + "]");
      }
      if (length > in.remaining()) {
        throw new TokenizerFormatException(source, "truncated in the bytes of token " + count);
      }
      String raw =
          TokenizerFiles.utf8(data, in.position(), length, source, "token " + count + "'s piece");
      in.position(in.position() + length);
      pieces[count++] = toSentencePieceForm(raw);
    }
    return build(source, Arrays.copyOf(pieces, count), Arrays.copyOf(scores, count));
  }

  private static SentencePieceBpeTokenizer build(String source, String[] pieces, float[] scores)
      throws TokenizerFormatException {
    TokenType[] types = new TokenType[pieces.length];
    int bos = -1;
    int eos = -1;
    int unk = -1;
    for (int id = 0; id < pieces.length; id++) {
      String piece = pieces[id];
      TokenType type = TokenType.NORMAL;
      if (piece.equals("<unk>") && unk < 0) {
        type = TokenType.UNKNOWN;
        unk = id;
      } else if (piece.equals("<s>") && bos < 0) {
        type = TokenType.CONTROL;
        bos = id;
      } else if (piece.equals("</s>") && eos < 0) {
        type = TokenType.CONTROL;
        eos = id;
      } else if (SentencePieceBpeTokenizer.parseByte(piece) >= 0) {
        type = TokenType.BYTE;
      }
      types[id] = type;
    }
    return SentencePieceBpeTokenizer.create(
        source, pieces, scores, types, bos, eos, unk, SentencePieceNormalizer.LLAMA);
  }

  /** Undoes llama2.c's export rule: BOS/EOS lose their newlines, spaces become {@code ▁}. */
  private static String toSentencePieceForm(String raw) {
    if (raw.equals("\n<s>\n")) {
      return "<s>";
    }
    if (raw.equals("\n</s>\n")) {
      return "</s>";
    }
    return raw.replace(' ', SentencePieceNormalizer.SPACE_MARKER);
  }
}
