package io.kvant.perf.synth;

import java.util.ArrayList;
import java.util.List;

/**
 * A synthetic SentencePiece-style vocabulary for GGUF {@code tokenizer.ggml.model = "llama"}: id 0
 * {@code <unk>}, 1 {@code <s>}, 2 {@code </s>}, ids 3..258 the byte-fallback pieces {@code
 * <0x00>}..{@code <0xFF>}, then filler pieces up to the vocabulary size.
 *
 * <p>Fillers are the word-start marker {@code ▁} (U+2581) and every lower-case letter string of
 * length 1, 2, 3, ... each bare and with a leading {@code ▁}, shortest first, so any lower-case
 * text tokenizes through merges and is never out of vocabulary (bytes cover the rest). Scores fall
 * with the id (longer, later pieces are merged later), as SentencePiece BPE scores do. Token types
 * use the SentencePiece codes: 1 normal, 2 unknown, 3 control, 6 byte.
 */
public final class SyntheticVocab {
  /** Id of the first filler piece. */
  public static final int FIRST_FILLER = 3 + 256;

  /** Token type codes (SentencePiece / GGUF). */
  static final int NORMAL = 1;

  static final int UNKNOWN = 2;
  static final int CONTROL = 3;
  static final int BYTE = 6;

  private final List<String> tokens;
  private final float[] scores;
  private final int[] types;

  private SyntheticVocab(List<String> tokens, float[] scores, int[] types) {
    this.tokens = tokens;
    this.scores = scores;
    this.types = types;
  }

  /**
   * Builds the vocabulary of {@code size} pieces (deterministic: no randomness).
   *
   * @throws IllegalArgumentException if {@code size < FIRST_FILLER}
   */
  public static SyntheticVocab of(int size) {
    if (size < FIRST_FILLER) {
      throw new IllegalArgumentException("vocab size must be >= " + FIRST_FILLER + ": " + size);
    }
    List<String> tokens = new ArrayList<>(size);
    float[] scores = new float[size];
    int[] types = new int[size];
    tokens.add("<unk>");
    types[0] = UNKNOWN;
    tokens.add("<s>");
    types[1] = CONTROL;
    tokens.add("</s>");
    types[2] = CONTROL;
    for (int b = 0; b < 256; b++) {
      types[tokens.size()] = BYTE;
      tokens.add(String.format("<0x%02X>", b));
    }
    if (tokens.size() < size) {
      types[tokens.size()] = NORMAL;
      scores[tokens.size()] = -1f;
      tokens.add("\u2581");
    }
    char[] word = new char[] {'a'};
    boolean withMarker = false;
    while (tokens.size() < size) {
      int id = tokens.size();
      types[id] = NORMAL;
      scores[id] = -(float) (id - FIRST_FILLER + 1);
      tokens.add(withMarker ? "\u2581" + new String(word) : new String(word));
      if (withMarker) {
        word = next(word);
      }
      withMarker = !withMarker;
    }
    return new SyntheticVocab(List.copyOf(tokens), scores, types);
  }

  /** The next string in length-then-lexicographic order over a..z. */
  private static char[] next(char[] w) {
    char[] n = w.clone();
    for (int i = n.length - 1; i >= 0; i--) {
      if (n[i] < 'z') {
        n[i]++;
        return n;
      }
      n[i] = 'a';
    }
    char[] longer = new char[n.length + 1];
    java.util.Arrays.fill(longer, 'a');
    return longer;
  }

  /** The pieces, by id; immutable. */
  public List<String> tokens() {
    return tokens;
  }

  /** The scores, by id (a copy). */
  public float[] scores() {
    return scores.clone();
  }

  /** The SentencePiece token type codes, by id (a copy). */
  public int[] types() {
    return types.clone();
  }
}
