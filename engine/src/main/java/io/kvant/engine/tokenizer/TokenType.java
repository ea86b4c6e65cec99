package io.kvant.engine.tokenizer;

/**
 * Kind of a vocabulary entry. The numeric codes are those of SentencePiece's {@code
 * SentencePiece.Type} enum, which GGUF's {@code tokenizer.ggml.token_type} array reuses.
 */
public enum TokenType {
  /** An ordinary word piece, used by merges. */
  NORMAL(1),
  /** The unknown token, emitted for text the vocabulary cannot represent. */
  UNKNOWN(2),
  /** A control token such as BOS or EOS: never produced from text, decodes to nothing. */
  CONTROL(3),
  /** A piece that is always matched whole in the text and never split or merged further. */
  USER_DEFINED(4),
  /** A reserved piece: may be formed by merges, but is split back into its parts in the output. */
  UNUSED(5),
  /** A byte-fallback piece {@code <0xNN>} standing for one raw byte. */
  BYTE(6);

  private final int code;

  TokenType(int code) {
    this.code = code;
  }

  /** The SentencePiece / GGUF numeric code. */
  public int code() {
    return code;
  }

  /**
   * The type with the given SentencePiece / GGUF code.
   *
   * @throws IllegalArgumentException for an unknown code
   */
  public static TokenType fromCode(int code) {
    for (TokenType type : values()) {
      if (type.code == code) {
        return type;
      }
    }
    throw new IllegalArgumentException("unknown token type code " + code);
  }
}
