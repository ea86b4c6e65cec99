package io.kvant.engine.tokenizer;

import java.text.Normalizer;

/**
 * The text normalization SentencePiece applies before segmenting, reduced to the options real BPE
 * models use.
 *
 * <p>Order: optional NFKC, optional whitespace cleanup (drop leading and trailing spaces, collapse
 * runs of spaces to one), then, for non-empty text, the dummy prefix (one space in front, so that
 * the first word is segmented like every other word), and finally every space becomes the
 * whitespace marker U+2581 ({@code ▁}).
 *
 * @param addDummyPrefix SentencePiece's {@code add_dummy_prefix} (GGUF {@code add_space_prefix})
 * @param removeExtraWhitespaces SentencePiece's {@code remove_extra_whitespaces}
 * @param nfkc whether to apply Unicode NFKC first. SentencePiece's {@code nmt_nfkc} rules are a
 *     precompiled character map close to, but not exactly, NFKC; this is an approximation of them.
 */
public record SentencePieceNormalizer(
    boolean addDummyPrefix, boolean removeExtraWhitespaces, boolean nfkc) {

  /** The whitespace marker that stands for a space inside pieces. */
  public static final char SPACE_MARKER = '\u2581';

  /** What Llama-style models use: dummy prefix on, no other changes. */
  public static final SentencePieceNormalizer LLAMA =
      new SentencePieceNormalizer(true, false, false);

  /** Returns the normalized form of {@code text}, with spaces as {@link #SPACE_MARKER}. */
  public String normalize(String text) {
    String s = nfkc ? Normalizer.normalize(text, Normalizer.Form.NFKC) : text;
    if (removeExtraWhitespaces) {
      s = collapseSpaces(s);
    }
    if (s.isEmpty()) {
      return s; // no dummy prefix for empty input: it encodes to nothing
    }
    StringBuilder out = new StringBuilder(s.length() + 1);
    if (addDummyPrefix) {
      out.append(SPACE_MARKER);
    }
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      out.append(c == ' ' ? SPACE_MARKER : c);
    }
    return out.toString();
  }

  private static String collapseSpaces(String s) {
    StringBuilder out = new StringBuilder(s.length());
    boolean pendingSpace = false;
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c == ' ') {
        pendingSpace = out.length() > 0;
      } else {
        if (pendingSpace) {
          out.append(' ');
          pendingSpace = false;
        }
        out.append(c);
      }
    }
    return out.toString();
  }
}
