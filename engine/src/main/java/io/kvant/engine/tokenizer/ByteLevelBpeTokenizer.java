package io.kvant.engine.tokenizer;

import static java.nio.charset.StandardCharsets.UTF_8;

import java.io.ByteArrayOutputStream;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Byte-level BPE as in GPT-2, Llama 3 and Qwen (Hugging Face {@code tokenizers} model type {@code
 * BPE} with a {@code ByteLevel} pre-tokenizer). Load it with {@link HfTokenizerJson#read} or {@link
 * #fromGguf}.
 *
 * <p>Encoding:
 *
 * <ol>
 *   <li>Added tokens (e.g. {@code <|begin_of_text|>}) are found verbatim in the raw text, longest
 *       first at each position, and emitted as their ids. As in Hugging Face's default, this
 *       applies to special tokens too: callers that must not let user text produce control tokens
 *       should encode such text separately or escape it.
 *   <li>The text between them is optionally Unicode-normalized, pre-tokenized (by the model's
 *       regex, e.g. GPT-2's or Llama 3's), and each piece's UTF-8 bytes are written as GPT-2's
 *       printable byte characters.
 *   <li>With {@code ignore_merges}, a piece that is itself a vocabulary entry is emitted whole;
 *       otherwise its characters are merged pairwise, lowest merge rank first (leftmost on ties),
 *       until no ranked pair remains.
 * </ol>
 *
 * <p>Decoding maps token characters back to bytes; added tokens decode to their content, special
 * ones to nothing. There is no dummy prefix to strip. Ids without an entry (gaps in a vocabulary)
 * decode to nothing. Immutable and thread-safe.
 */
public final class ByteLevelBpeTokenizer implements Tokenizer {
  private static final byte[] NO_BYTES = new byte[0];

  /** A token matched verbatim in text before BPE. */
  record AddedToken(int id, String content, boolean special) {}

  private final String[] pieces;
  private final byte[][] bytes;
  private final boolean[] control;
  private final Map<String, Integer> vocab;
  private final MergeTable merges;
  private final LiteralMatcher added;
  private final int[] addedIds;
  private final Normalizer.Form normalization;
  private final PreTokenizer preTokenizer;
  private final boolean ignoreMerges;
  private final int unk;
  private final int bos;
  private final int eos;

  /**
   * @param vocab token string (in byte-mapped form) to id
   * @param mergePairs merges in rank order, each the two token strings
   * @param normalization Unicode normalization before pre-tokenizing, or null
   * @param unkToken the unknown token's string, or null
   * @param bos BOS id or -1
   * @param eos EOS id or -1
   */
  ByteLevelBpeTokenizer(
      String source,
      Map<String, Integer> vocab,
      List<String[]> mergePairs,
      List<AddedToken> addedTokens,
      Normalizer.Form normalization,
      PreTokenizer preTokenizer,
      boolean ignoreMerges,
      String unkToken,
      int bos,
      int eos)
      throws TokenizerFormatException {
    int size = 0;
    for (Map.Entry<String, Integer> e : vocab.entrySet()) {
      size = Math.max(size, checkId(source, e.getValue(), "token " + e.getKey()) + 1);
    }
    for (AddedToken token : addedTokens) {
      size = Math.max(size, checkId(source, token.id(), "added token " + token.content()) + 1);
      if (token.content().isEmpty()) {
        throw new TokenizerFormatException(source, "added token " + token.id() + " is empty");
      }
    }
    if (size == 0) {
      throw new TokenizerFormatException(source, "empty vocabulary");
    }
    this.pieces = new String[size];
    this.bytes = new byte[size][];
    this.control = new boolean[size];
    for (Map.Entry<String, Integer> e : vocab.entrySet()) {
      int id = e.getValue();
      if (pieces[id] != null) {
        throw new TokenizerFormatException(
            source, "id " + id + " used by both " + pieces[id] + " and " + e.getKey());
      }
      pieces[id] = e.getKey();
      bytes[id] = unmap(e.getKey());
    }
    List<String> addedContents = new ArrayList<>();
    this.addedIds = new int[addedTokens.size()];
    for (AddedToken token : addedTokens) {
      // An added token may reuse a vocabulary id (GPT-2's <|endoftext|>); its content wins.
      pieces[token.id()] = token.content();
      bytes[token.id()] = token.special() ? NO_BYTES : token.content().getBytes(UTF_8);
      control[token.id()] = token.special();
      addedIds[addedContents.size()] = token.id();
      addedContents.add(token.content());
    }
    for (int id = 0; id < size; id++) {
      if (pieces[id] == null) {
        pieces[id] = "";
        bytes[id] = NO_BYTES;
      }
    }
    this.vocab = PieceMaps.copyOf(vocab);
    this.merges = new MergeTable(mergePairs.size());
    for (int rank = 0; rank < mergePairs.size(); rank++) {
      String[] pair = mergePairs.get(rank);
      Integer left = vocab.get(pair[0]);
      Integer right = vocab.get(pair[1]);
      Integer merged = vocab.get(pair[0] + pair[1]);
      if (left == null || right == null || merged == null) {
        throw new TokenizerFormatException(
            source,
            "merge " + rank + " (" + pair[0] + " " + pair[1] + ") uses a token not in the vocab");
      }
      merges.put(left, right, rank, merged);
    }
    this.added = new LiteralMatcher(addedContents);
    this.normalization = normalization;
    this.preTokenizer = Objects.requireNonNull(preTokenizer);
    this.ignoreMerges = ignoreMerges;
    this.unk = unkToken == null ? -1 : vocab.getOrDefault(unkToken, -1);
    checkSpecial(source, "bos", bos, size);
    checkSpecial(source, "eos", eos, size);
    this.bos = bos;
    this.eos = eos;
  }

  /** Largest id accepted: far above real vocabularies (~260k), low enough to bound memory. */
  static final int MAX_ID = (1 << 22) - 1;

  private static int checkId(String source, Integer id, String what)
      throws TokenizerFormatException {
    if (id == null || id < 0 || id > MAX_ID) {
      throw new TokenizerFormatException(source, what + " has invalid id " + id);
    }
    return id;
  }

  private static void checkSpecial(String source, String name, int id, int size)
      throws TokenizerFormatException {
    if (id < -1 || id >= size) {
      throw new TokenizerFormatException(source, name + " id " + id + " outside vocabulary");
    }
  }

  /**
   * Builds a tokenizer from the arrays of a GGUF file whose {@code tokenizer.ggml.model} is {@code
   * gpt2}: {@code tokenizer.ggml.tokens}, {@code .token_type}, {@code .merges} ("left right"
   * strings), {@code .bos_token_id}, {@code .eos_token_id} (-1 when unset) and {@code
   * tokenizer.ggml.pre}. Control tokens (type 3) become special added tokens, user-defined ones
   * (type 4) plain added tokens.
   *
   * @param preType {@code "llama-bpe"} / {@code "llama3"} for Llama 3's pattern (with whole-word
   *     vocabulary hits, as llama.cpp does), {@code "gpt-2"} / {@code "gpt2"} / {@code "default"}
   *     or null for GPT-2's
   * @throws TokenizerFormatException for inconsistent arrays, malformed merges or an unsupported
   *     {@code preType}
   */
  public static ByteLevelBpeTokenizer fromGguf(
      String[] tokens, int[] tokenTypes, String[] merges, int bos, int eos, String preType)
      throws TokenizerFormatException {
    String source = "GGUF tokenizer metadata";
    if (tokenTypes != null && tokenTypes.length != tokens.length) {
      throw new TokenizerFormatException(
          source, tokens.length + " tokens but " + tokenTypes.length + " token types");
    }
    Map<String, Integer> vocab = new HashMap<>();
    List<AddedToken> addedTokens = new ArrayList<>();
    for (int id = 0; id < tokens.length; id++) {
      int type = tokenTypes == null ? 1 : tokenTypes[id];
      if (type == TokenType.CONTROL.code() || type == TokenType.USER_DEFINED.code()) {
        addedTokens.add(new AddedToken(id, tokens[id], type == TokenType.CONTROL.code()));
      } else {
        vocab.putIfAbsent(tokens[id], id);
      }
    }
    List<String[]> pairs = new ArrayList<>(merges.length);
    for (String merge : merges) {
      pairs.add(splitMerge(source, merge));
    }
    boolean llama3 = "llama-bpe".equals(preType) || "llama3".equals(preType);
    if (!llama3
        && preType != null
        && !preType.equals("gpt-2")
        && !preType.equals("gpt2")
        && !preType.equals("default")) {
      throw new TokenizerFormatException(source, "unsupported pre-tokenizer type " + preType);
    }
    PreTokenizer pre =
        llama3
            ? new PreTokenizer(
                List.of(
                    new PreTokenizer.RegexSplit(
                        PreTokenizer.compile(PreTokenizer.LLAMA3_PATTERN),
                        PreTokenizer.Behavior.ISOLATED,
                        false),
                    new PreTokenizer.ByteLevel(false, false)))
            : new PreTokenizer(List.of(new PreTokenizer.ByteLevel(false, true)));
    return new ByteLevelBpeTokenizer(
        source, vocab, pairs, addedTokens, null, pre, llama3, null, bos, eos);
  }

  /** Splits a merge written as {@code "left right"}. */
  static String[] splitMerge(String source, String merge) throws TokenizerFormatException {
    int space = merge.indexOf(' ');
    if (space <= 0 || space == merge.length() - 1 || merge.indexOf(' ', space + 1) >= 0) {
      throw new TokenizerFormatException(source, "merge is not two tokens: \"" + merge + "\"");
    }
    return new String[] {merge.substring(0, space), merge.substring(space + 1)};
  }

  /** Bytes of a byte-mapped token string; characters outside the mapping stand for themselves. */
  private static byte[] unmap(String token) {
    ByteArrayOutputStream out = new ByteArrayOutputStream(token.length());
    for (int i = 0; i < token.length(); i++) {
      char c = token.charAt(i);
      int b = GptByteMapping.byteOf(c);
      if (b >= 0) {
        out.write(b);
      } else {
        int end = i + (Character.isHighSurrogate(c) && i + 1 < token.length() ? 2 : 1);
        out.writeBytes(token.substring(i, end).getBytes(UTF_8));
        i = end - 1;
      }
    }
    return out.toByteArray();
  }

  @Override
  public int[] encode(String text, boolean addBos) {
    IdList out = new IdList(text.length() / 3 + 4);
    if (addBos && bos >= 0) {
      out.add(bos);
    }
    int segmentStart = 0;
    int pos = 0;
    while (pos < text.length()) {
      int match = added.isEmpty() ? -1 : added.longestAt(text, pos);
      if (match >= 0) {
        encodeSegment(text.substring(segmentStart, pos), out);
        out.add(addedIds[match]);
        pos += added.length(match);
        segmentStart = pos;
      } else {
        pos += Character.charCount(text.codePointAt(pos));
      }
    }
    encodeSegment(text.substring(segmentStart), out);
    return out.toArray();
  }

  private void encodeSegment(String segment, IdList out) {
    if (segment.isEmpty()) {
      return;
    }
    String normalized =
        normalization == null ? segment : Normalizer.normalize(segment, normalization);
    for (String piece : preTokenizer.split(normalized)) {
      Integer whole = ignoreMerges ? vocab.get(piece) : null;
      if (whole != null) {
        out.add(whole);
      } else {
        encodePiece(piece, out);
      }
    }
  }

  private void encodePiece(String piece, IdList out) {
    BpeMerger merger = new BpeMerger(piece.length());
    for (int i = 0; i < piece.length(); i++) {
      Integer id = vocab.get(String.valueOf(piece.charAt(i)));
      // A byte character missing from the vocabulary cannot merge; it becomes <unk> below.
      merger.add(i, i + 1, id == null ? -1 : id, id == null);
    }
    merger.mergeAll((left, right, start, split, end) -> merges.get(left, right));
    for (int s = merger.first(); s >= 0; s = merger.next(s)) {
      int id = merger.id(s);
      if (id >= 0) {
        out.add(id);
      } else if (unk >= 0) {
        out.add(unk); // without an unknown token the byte is dropped, as Hugging Face does
      }
    }
  }

  @Override
  public byte[] tokenBytes(int id) {
    return bytes[Objects.checkIndex(id, pieces.length)].clone();
  }

  @Override
  public String piece(int id) {
    return pieces[Objects.checkIndex(id, pieces.length)];
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
    return control[Objects.checkIndex(id, pieces.length)];
  }

  @Override
  public IncrementalDecoder newDecoder(boolean atSequenceStart) {
    return new IncrementalDecoder(this, null, atSequenceStart);
  }
}
