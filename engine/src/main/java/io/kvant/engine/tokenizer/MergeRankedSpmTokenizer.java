package io.kvant.engine.tokenizer;

import static java.nio.charset.StandardCharsets.UTF_8;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.UnaryOperator;

/**
 * The SentencePiece-style BPE that Hugging Face {@code tokenizer.json} files describe for Llama,
 * Mistral and models trained like them (TinyStories): model {@code BPE} over Unicode characters
 * with a merge list, spaces turned into {@code ▁} by the normalizer ({@code Prepend} and {@code
 * Replace} steps, or {@code Metaspace}), no byte-level mapping, and {@code byte_fallback} to {@code
 * <0xNN>} tokens. Load it with {@link HfTokenizerJson#load}.
 *
 * <p>Encoding: added tokens are matched verbatim in the raw text first (longest at each position);
 * every stretch of text between them is normalized and merged as one sequence: each character
 * starts as its vocabulary id, and the adjacent pair with the lowest merge rank (leftmost on ties)
 * is merged until no listed pair remains. A character outside the vocabulary becomes its UTF-8
 * bytes as {@code <0xNN>} tokens when byte fallback is on and the vocabulary has them all; with
 * byte fallback on but byte tokens missing it is dropped, as Hugging Face does; with byte fallback
 * off it is the unknown token (consecutive unknowns fused into one when {@code fuse_unk}).
 *
 * <p>Decoding: {@code ▁} is a space, byte tokens give their byte, special added tokens nothing; the
 * leading space of the first text token of a sequence (or after BOS) is dropped, as the {@code
 * Strip} decoder of such files does. Immutable and thread-safe.
 */
public final class MergeRankedSpmTokenizer implements Tokenizer {
  private static final byte[] NO_BYTES = new byte[0];

  private final String[] pieces;
  private final byte[][] bytes;
  private final boolean[] control;
  private final Map<String, Integer> vocab;
  private final MergeTable merges;
  private final LiteralMatcher added;
  private final int[] addedIds;
  private final UnaryOperator<String> normalizer;
  private final int[] byteTokens;
  private final boolean byteFallback;
  private final int unk;
  private final boolean fuseUnk;
  private final int bos;
  private final int eos;

  /**
   * @param vocab token to id
   * @param mergePairs merges in rank order
   * @param normalizer applied to each stretch of text between added tokens
   * @param byteFallback whether unknown characters become {@code <0xNN>} tokens
   * @param unkToken the unknown token's string, or null
   * @param bos BOS id or -1
   * @param eos EOS id or -1
   */
  MergeRankedSpmTokenizer(
      String source,
      Map<String, Integer> vocab,
      List<String[]> mergePairs,
      List<ByteLevelBpeTokenizer.AddedToken> addedTokens,
      UnaryOperator<String> normalizer,
      boolean byteFallback,
      String unkToken,
      boolean fuseUnk,
      int bos,
      int eos)
      throws TokenizerFormatException {
    int size = 0;
    for (Map.Entry<String, Integer> e : vocab.entrySet()) {
      size = Math.max(size, checkId(source, e.getValue(), "token " + e.getKey()) + 1);
    }
    for (ByteLevelBpeTokenizer.AddedToken t : addedTokens) {
      size = Math.max(size, checkId(source, t.id(), "added token " + t.content()) + 1);
      if (t.content().isEmpty()) {
        throw new TokenizerFormatException(source, "added token " + t.id() + " is empty");
      }
    }
    if (size == 0) {
      throw new TokenizerFormatException(source, "empty vocabulary");
    }
    pieces = new String[size];
    bytes = new byte[size][];
    control = new boolean[size];
    byteTokens = new int[256];
    java.util.Arrays.fill(byteTokens, -1);
    for (Map.Entry<String, Integer> e : vocab.entrySet()) {
      int id = e.getValue();
      if (pieces[id] != null) {
        throw new TokenizerFormatException(
            source, "id " + id + " used by both " + pieces[id] + " and " + e.getKey());
      }
      String piece = e.getKey();
      pieces[id] = piece;
      int b = byteToken(piece);
      if (b >= 0) {
        byteTokens[b] = id;
        bytes[id] = new byte[] {(byte) b};
      } else {
        bytes[id] = piece.replace(SentencePieceNormalizer.SPACE_MARKER, ' ').getBytes(UTF_8);
      }
    }
    List<String> contents = new ArrayList<>();
    addedIds = new int[addedTokens.size()];
    for (ByteLevelBpeTokenizer.AddedToken t : addedTokens) {
      pieces[t.id()] = t.content();
      bytes[t.id()] = t.special() ? NO_BYTES : t.content().getBytes(UTF_8);
      control[t.id()] = t.special();
      addedIds[contents.size()] = t.id();
      contents.add(t.content());
    }
    for (int id = 0; id < size; id++) {
      if (pieces[id] == null) {
        pieces[id] = "";
        bytes[id] = NO_BYTES;
      }
    }
    this.vocab = PieceMaps.copyOf(vocab);
    merges = new MergeTable(mergePairs.size());
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
    boolean allBytes = true;
    for (int b : byteTokens) {
      allBytes &= b >= 0;
    }
    if (!byteFallback || !allBytes) {
      java.util.Arrays.fill(byteTokens, -1);
    }
    this.byteFallback = byteFallback;
    added = new LiteralMatcher(contents);
    this.normalizer = Objects.requireNonNull(normalizer);
    this.unk = unkToken == null ? -1 : vocab.getOrDefault(unkToken, -1);
    this.fuseUnk = fuseUnk;
    if (bos < -1 || bos >= size || eos < -1 || eos >= size) {
      throw new TokenizerFormatException(source, "bos/eos id outside the vocabulary");
    }
    this.bos = bos;
    this.eos = eos;
  }

  private static int checkId(String source, Integer id, String what)
      throws TokenizerFormatException {
    if (id == null || id < 0 || id > ByteLevelBpeTokenizer.MAX_ID) {
      throw new TokenizerFormatException(source, what + " has invalid id " + id);
    }
    return id;
  }

  /** The byte of a {@code <0xNN>} piece, or -1. */
  private static int byteToken(String piece) {
    if (piece.length() != 6 || !piece.startsWith("<0x") || piece.charAt(5) != '>') {
      return -1;
    }
    try {
      return Integer.parseInt(piece.substring(3, 5), 16);
    } catch (NumberFormatException e) {
      return -1;
    }
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
    String s = normalizer.apply(segment);
    BpeMerger merger = new BpeMerger(s.length());
    for (int i = 0; i < s.length(); ) {
      int end = i + Character.charCount(s.codePointAt(i));
      Integer id = vocab.get(s.substring(i, end));
      // With byte fallback on but no byte tokens, Hugging Face leaves such a character out of
      // the word altogether, so its neighbours can merge across it.
      if (id != null || !byteFallback || byteTokens[0] >= 0) {
        merger.add(i, end, id == null ? -1 : id, id == null);
      }
      i = end;
    }
    merger.mergeAll((left, right, start, split, end) -> merges.get(left, right));
    boolean lastWasUnk = false;
    for (int sym = merger.first(); sym >= 0; sym = merger.next(sym)) {
      int id = merger.id(sym);
      if (id >= 0) {
        out.add(id);
        lastWasUnk = false;
        continue;
      }
      byte[] utf8 = s.substring(merger.start(sym), merger.end(sym)).getBytes(UTF_8);
      if (byteFallback) {
        for (byte b : utf8) {
          out.add(byteTokens[b & 0xFF]);
        }
        lastWasUnk = false;
      } else if (unk >= 0 && !(fuseUnk && lastWasUnk)) {
        out.add(unk);
        lastWasUnk = true;
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
    return new IncrementalDecoder(this, id -> true, atSequenceStart);
  }
}
