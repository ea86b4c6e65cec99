package io.kvant.engine.tokenizer;

import java.util.ArrayList;
import java.util.List;

/**
 * Builds small SentencePiece vocabularies by hand: {@code <unk>}, {@code <s>}, {@code </s>}, then
 * (optionally) the 256 byte tokens, then whatever pieces the test adds.
 */
final class SmallVocab {
  final List<String> pieces = new ArrayList<>();
  final List<Float> scores = new ArrayList<>();
  final List<TokenType> types = new ArrayList<>();

  SmallVocab(boolean withByteTokens) {
    add("<unk>", 0, TokenType.UNKNOWN);
    add("<s>", 0, TokenType.CONTROL);
    add("</s>", 0, TokenType.CONTROL);
    if (withByteTokens) {
      for (int b = 0; b < 256; b++) {
        add(String.format("<0x%02X>", b), 0, TokenType.BYTE);
      }
    }
  }

  /** Adds a piece and returns its id. */
  int add(String piece, float score, TokenType type) {
    pieces.add(piece);
    scores.add(score);
    types.add(type);
    return pieces.size() - 1;
  }

  int add(String piece, float score) {
    return add(piece, score, TokenType.NORMAL);
  }

  String[] pieceArray() {
    return pieces.toArray(String[]::new);
  }

  float[] scoreArray() {
    float[] s = new float[scores.size()];
    for (int i = 0; i < s.length; i++) {
      s[i] = scores.get(i);
    }
    return s;
  }

  TokenType[] typeArray() {
    return types.toArray(TokenType[]::new);
  }

  SentencePieceBpeTokenizer build(SentencePieceNormalizer normalizer)
      throws TokenizerFormatException {
    return SentencePieceBpeTokenizer.of(
        pieceArray(), scoreArray(), typeArray(), 1, 2, 0, normalizer);
  }

  byte[] toModelProto() {
    return ProtoWriter.bpeModel(pieceArray(), scoreArray(), typeArray());
  }
}
