package io.kvant.engine.tokenizer;

import static java.nio.charset.StandardCharsets.UTF_8;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * SentencePiece BPE with byte fallback, as used by Llama 1/2, Mistral and llama2.c models.
 *
 * <p>Encoding, following SentencePiece's BPE model:
 *
 * <ol>
 *   <li>Normalize (see {@link SentencePieceNormalizer}): spaces become {@code ▁}, and a dummy
 *       prefix {@code ▁} goes in front of non-empty text.
 *   <li>Split into symbols: a {@link TokenType#USER_DEFINED user-defined} piece found at a position
 *       (longest first) is one symbol that never merges; otherwise each Unicode character is one
 *       symbol.
 *   <li>Repeatedly merge the adjacent pair whose concatenation is a {@link TokenType#NORMAL
 *       normal}, user-defined or {@link TokenType#UNUSED unused} piece with the highest score
 *       (leftmost pair on ties).
 *   <li>Split any unused piece back into the two pieces it was merged from, recursively.
 *   <li>A symbol that is not a piece (a character outside the vocabulary) becomes one {@code
 *       <0xNN>} {@link TokenType#BYTE byte} token per UTF-8 byte, or the unknown token if the
 *       vocabulary lacks one of those byte tokens.
 * </ol>
 *
 * <p>Control pieces such as {@code <s>} are never produced from text: a literal "&lt;s&gt;" in the
 * input is encoded as ordinary characters. Cost is O(n log n) in the text length.
 *
 * <p>Decoding: word pieces give their text with {@code ▁} as a space, byte tokens their byte,
 * control tokens nothing, and the unknown token SentencePiece's {@code " ⁇ "}. With the dummy
 * prefix on, the leading space of the first text token of a sequence and of the first text token
 * after BOS is dropped (SentencePiece and llama2.c conventions).
 *
 * <p>Immutable and thread-safe.
 */
public final class SentencePieceBpeTokenizer implements Tokenizer {
  private static final byte[] NO_BYTES = new byte[0];
  private static final byte[] UNKNOWN_SURFACE = " \u2047 ".getBytes(UTF_8);

  private final String[] pieces;
  private final float[] scores;
  private final TokenType[] types;
  private final int bos;
  private final int eos;
  private final int unk;
  private final SentencePieceNormalizer normalizer;

  /** Pieces merges may produce (normal, user-defined, unused) to their id; the first id wins. */
  private final Map<String, Integer> mergeable;

  /** Id of the byte token for each byte value, -1 where the vocabulary has none. */
  private final int[] byteTokens = new int[256];

  private final boolean hasAllByteTokens;

  /** User-defined pieces, and their ids in the same order. */
  private final LiteralMatcher userDefined;

  private final int[] userDefinedIds;

  /** What each id decodes to, before dummy-prefix removal. */
  private final byte[][] bytes;

  private SentencePieceBpeTokenizer(
      String source,
      String[] pieces,
      float[] scores,
      TokenType[] types,
      int bos,
      int eos,
      int unk,
      SentencePieceNormalizer normalizer)
      throws TokenizerFormatException {
    int n = pieces.length;
    if (n == 0) {
      throw new TokenizerFormatException(source, "empty vocabulary");
    }
    if (scores.length != n || types.length != n) {
      throw new TokenizerFormatException(
          source,
          "vocabulary arrays differ in length: "
              + n
              + " pieces, "
              + scores.length
              + " scores, "
              + types.length
              + " types");
    }
    checkSpecialId(source, "bos", bos, n);
    checkSpecialId(source, "eos", eos, n);
    checkSpecialId(source, "unk", unk, n);
    this.pieces = pieces;
    this.scores = scores;
    this.types = types;
    this.bos = bos;
    this.eos = eos;
    this.unk = unk;
    this.normalizer = Objects.requireNonNull(normalizer, "normalizer");

    Arrays.fill(byteTokens, -1);
    HashMap<String, Integer> mergeable = new HashMap<>();
    List<String> userPieces = new ArrayList<>();
    List<Integer> userIds = new ArrayList<>();
    this.bytes = new byte[n][];
    for (int id = 0; id < n; id++) {
      String piece = pieces[id];
      TokenType type = types[id];
      if (piece == null || type == null) {
        throw new TokenizerFormatException(source, "token " + id + " has no piece or no type");
      }
      switch (type) {
        case NORMAL, UNUSED -> {
          mergeable.putIfAbsent(piece, id);
          bytes[id] = piece.replace(SentencePieceNormalizer.SPACE_MARKER, ' ').getBytes(UTF_8);
        }
        case USER_DEFINED -> {
          mergeable.putIfAbsent(piece, id);
          userPieces.add(piece);
          userIds.add(id);
          bytes[id] = piece.replace(SentencePieceNormalizer.SPACE_MARKER, ' ').getBytes(UTF_8);
        }
        case BYTE -> {
          int value = parseByte(piece);
          if (value < 0) {
            throw new TokenizerFormatException(
                source, "byte token " + id + " is not of the form <0xNN>: " + piece);
          }
          if (byteTokens[value] < 0) {
            byteTokens[value] = id;
          }
          bytes[id] = new byte[] {(byte) value};
        }
        case CONTROL -> bytes[id] = NO_BYTES;
        case UNKNOWN -> bytes[id] = UNKNOWN_SURFACE;
      }
    }
    this.hasAllByteTokens = Arrays.stream(byteTokens).allMatch(id -> id >= 0);
    if (unk < 0 && !hasAllByteTokens) {
      throw new TokenizerFormatException(
          source, "vocabulary has neither an unknown token nor all 256 byte tokens");
    }
    this.mergeable = PieceMaps.view(mergeable);
    this.userDefined = new LiteralMatcher(userPieces);
    this.userDefinedIds = userIds.stream().mapToInt(Integer::intValue).toArray();
  }

  /**
   * Builds a tokenizer from a vocabulary. The arrays are copied.
   *
   * @param pieces piece text by id, with {@code ▁} for spaces, byte tokens as {@code <0xNN>}
   * @param scores merge scores by id (higher merges first)
   * @param types token types by id
   * @param bos BOS id or -1
   * @param eos EOS id or -1
   * @param unk unknown-token id or -1 (then all 256 byte tokens must exist)
   * @throws TokenizerFormatException if the arrays are inconsistent or an id is out of range
   */
  public static SentencePieceBpeTokenizer of(
      String[] pieces,
      float[] scores,
      TokenType[] types,
      int bos,
      int eos,
      int unk,
      SentencePieceNormalizer normalizer)
      throws TokenizerFormatException {
    return create("vocabulary", pieces, scores, types, bos, eos, unk, normalizer);
  }

  /** As {@link #of}, naming {@code source} in error messages. */
  static SentencePieceBpeTokenizer create(
      String source,
      String[] pieces,
      float[] scores,
      TokenType[] types,
      int bos,
      int eos,
      int unk,
      SentencePieceNormalizer normalizer)
      throws TokenizerFormatException {
    return new SentencePieceBpeTokenizer(
        source, pieces.clone(), scores.clone(), types.clone(), bos, eos, unk, normalizer);
  }

  /**
   * Builds a tokenizer from the arrays of a GGUF file whose {@code tokenizer.ggml.model} is {@code
   * llama}: {@code tokenizer.ggml.tokens}, {@code .scores}, {@code .token_type}, {@code
   * .bos_token_id}, {@code .eos_token_id}, {@code .unknown_token_id} and {@code .add_space_prefix}
   * (true when absent). Unset ids are -1 (GGUF writes 0xFFFFFFFF).
   *
   * @param scores may be null (all zero)
   * @param tokenTypes may be null (all normal); code 0 ("undefined") counts as normal
   * @throws TokenizerFormatException if the arrays are inconsistent, a type code is unknown, or an
   *     id is out of range
   */
  public static SentencePieceBpeTokenizer fromGguf(
      String[] tokens,
      float[] scores,
      int[] tokenTypes,
      int bos,
      int eos,
      int unk,
      boolean addSpacePrefix)
      throws TokenizerFormatException {
    String source = "GGUF tokenizer metadata";
    int n = tokens.length;
    float[] s = scores == null ? new float[n] : scores.clone();
    TokenType[] types = new TokenType[n];
    if (tokenTypes != null && tokenTypes.length != n) {
      throw new TokenizerFormatException(
          source, n + " tokens but " + tokenTypes.length + " token types");
    }
    for (int id = 0; id < n; id++) {
      int code = tokenTypes == null ? 0 : tokenTypes[id];
      try {
        types[id] = code == 0 ? TokenType.NORMAL : TokenType.fromCode(code);
      } catch (IllegalArgumentException e) {
        throw new TokenizerFormatException(source, "token " + id + ": " + e.getMessage(), e);
      }
    }
    return new SentencePieceBpeTokenizer(
        source,
        tokens.clone(),
        s,
        types,
        bos,
        eos,
        unk,
        new SentencePieceNormalizer(addSpacePrefix, false, false));
  }

  private static void checkSpecialId(String source, String name, int id, int n)
      throws TokenizerFormatException {
    if (id < -1 || id >= n) {
      throw new TokenizerFormatException(
          source, name + " id " + id + " outside vocabulary of " + n);
    }
  }

  /** The byte value of a piece {@code <0xNN>} (hex digits of either case), else -1. */
  static int parseByte(String piece) {
    if (piece.length() != 6 || !piece.startsWith("<0x") || piece.charAt(5) != '>') {
      return -1;
    }
    int hi = Character.digit(piece.charAt(3), 16);
    int lo = Character.digit(piece.charAt(4), 16);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
  }

  @Override
  public int[] encode(String text, boolean addBos) {
    String normalized = normalizer.normalize(text);
    BpeMerger merger = new BpeMerger(normalized.length());
    splitIntoSymbols(normalized, merger);
    Map<String, String[]> unusedParts = new HashMap<>();
    merger.mergeAll(
        (leftId, rightId, start, split, end) -> {
          Integer merged = mergeable.get(normalized.substring(start, end));
          if (merged == null) {
            return BpeMerger.NO_MERGE;
          }
          if (types[merged] == TokenType.UNUSED) {
            // Remember how it was formed, to split it back afterwards (as SentencePiece does).
            unusedParts.put(
                normalized.substring(start, end),
                new String[] {
                  normalized.substring(start, split), normalized.substring(split, end)
                });
          }
          return BpeMerger.candidate(BpeMerger.priorityOfScore(scores[merged]), merged);
        });

    IdList out = new IdList(normalized.length() + 1);
    if (addBos && bos >= 0) {
      out.add(bos);
    }
    for (int s = merger.first(); s >= 0; s = merger.next(s)) {
      String symbol = normalized.substring(merger.start(s), merger.end(s));
      emit(symbol, merger.id(s), unusedParts, out);
    }
    return out.toArray();
  }

  private void splitIntoSymbols(String normalized, BpeMerger merger) {
    int pos = 0;
    while (pos < normalized.length()) {
      int user = userDefined.isEmpty() ? -1 : userDefined.longestAt(normalized, pos);
      if (user >= 0) {
        int end = pos + userDefined.length(user);
        merger.add(pos, end, userDefinedIds[user], true);
        pos = end;
      } else {
        int end = pos + Character.charCount(normalized.codePointAt(pos));
        Integer id = mergeable.get(normalized.substring(pos, end));
        merger.add(pos, end, id == null ? -1 : id, false);
        pos = end;
      }
    }
  }

  private void emit(String symbol, int id, Map<String, String[]> unusedParts, IdList out) {
    if (id >= 0 && types[id] == TokenType.UNUSED) {
      String[] parts = unusedParts.get(symbol);
      if (parts != null) {
        for (String part : parts) {
          Integer partId = mergeable.get(part);
          emit(part, partId == null ? -1 : partId, unusedParts, out);
        }
        return;
      }
    }
    if (id >= 0) {
      out.add(id);
      return;
    }
    byte[] utf8 = symbol.getBytes(UTF_8);
    if (!hasAllByteTokens) {
      // Some byte might have no token: only take the byte route when every byte has one.
      for (byte b : utf8) {
        if (byteTokens[b & 0xFF] < 0) {
          out.add(unk);
          return;
        }
      }
    }
    for (byte b : utf8) {
      out.add(byteTokens[b & 0xFF]);
    }
  }

  @Override
  public byte[] tokenBytes(int id) {
    return bytes[checkId(id)].clone();
  }

  @Override
  public String piece(int id) {
    return pieces[checkId(id)];
  }

  /** The merge score of {@code id}. */
  public float score(int id) {
    return scores[checkId(id)];
  }

  /** The type of {@code id}. */
  public TokenType type(int id) {
    return types[checkId(id)];
  }

  /** The unknown-token id, or -1. */
  public int unk() {
    return unk;
  }

  /** The normalization applied before segmenting. */
  public SentencePieceNormalizer normalizer() {
    return normalizer;
  }

  @Override
  public int vocabSize() {
    return pieces.length;
  }

  @Override
  public int bos() {
    return bos;
  }

  @Override
  public int eos() {
    return eos;
  }

  @Override
  public boolean isControl(int id) {
    return types[checkId(id)] == TokenType.CONTROL || id == bos || id == eos;
  }

  @Override
  public IncrementalDecoder newDecoder(boolean atSequenceStart) {
    if (!normalizer.addDummyPrefix()) {
      return new IncrementalDecoder(this, null, atSequenceStart);
    }
    return new IncrementalDecoder(
        this,
        id ->
            switch (types[id]) {
              case NORMAL, USER_DEFINED, UNUSED -> true;
              default -> false;
            },
        atSequenceStart);
  }

  private int checkId(int id) {
    return Objects.checkIndex(id, pieces.length);
  }
}
