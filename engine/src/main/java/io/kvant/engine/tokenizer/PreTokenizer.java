package io.kvant.engine.tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Splits text into the pieces that byte-level BPE then encodes one by one (merges never cross piece
 * boundaries). A chain of steps, as in a Hugging Face {@code Sequence} pre-tokenizer; each step
 * maps every piece to zero or more pieces.
 */
final class PreTokenizer {

  /** GPT-2's split pattern, used by {@code ByteLevel} with {@code use_regex}. */
  static final String GPT2_PATTERN =
      "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

  /** Llama 3's split pattern (case-insensitive contractions, digits in groups of up to three). */
  static final String LLAMA3_PATTERN =
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"
          + "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

  /**
   * Compiles a Hugging Face (Oniguruma) pattern for Java with Unicode semantics: {@code \s}, {@code
   * \w} and case folding must be Unicode-aware there too, or e.g. a no-break space would not count
   * as whitespace.
   */
  static Pattern compile(String regex) {
    return Pattern.compile(regex, Pattern.UNICODE_CHARACTER_CLASS | Pattern.UNICODE_CASE);
  }

  /** What a split does with the matches of its pattern (Hugging Face's {@code behavior}). */
  enum Behavior {
    /** Matches and the text between them all become pieces. */
    ISOLATED,
    /** Matches are dropped, the text between them kept. */
    REMOVED,
    /** Each match is appended to the piece before it. */
    MERGED_WITH_PREVIOUS,
    /** Each match is prepended to the piece after it. */
    MERGED_WITH_NEXT
  }

  /** One step of the chain. */
  sealed interface Step permits RegexSplit, ByteLevel {
    void apply(String piece, List<String> out);
  }

  /**
   * Splits by a pattern.
   *
   * @param invert when true the pattern describes the pieces to keep rather than the delimiters
   *     (Hugging Face's {@code invert}), i.e. matches and gaps swap roles
   */
  record RegexSplit(Pattern pattern, Behavior behavior, boolean invert) implements Step {
    @Override
    public void apply(String piece, List<String> out) {
      // Segments alternate between gaps and matches; record each with whether it "is a match" in
      // the sense of the behaviour (inverted if asked).
      List<String> parts = new ArrayList<>();
      List<Boolean> delimiter = new ArrayList<>();
      Matcher m = pattern.matcher(piece);
      int last = 0;
      while (m.find()) {
        if (m.end() == m.start()) {
          continue; // empty matches split nothing
        }
        if (m.start() > last) {
          parts.add(piece.substring(last, m.start()));
          delimiter.add(invert);
        }
        parts.add(m.group());
        delimiter.add(!invert);
        last = m.end();
      }
      if (last < piece.length()) {
        parts.add(piece.substring(last));
        delimiter.add(invert);
      }
      combine(parts, delimiter, out);
    }

    private void combine(List<String> parts, List<Boolean> delimiter, List<String> out) {
      StringBuilder pending = new StringBuilder();
      for (int i = 0; i < parts.size(); i++) {
        String part = parts.get(i);
        boolean isDelimiter = delimiter.get(i);
        switch (behavior) {
          case ISOLATED -> out.add(part);
          case REMOVED -> {
            if (!isDelimiter) {
              out.add(part);
            }
          }
          case MERGED_WITH_PREVIOUS -> {
            if (isDelimiter && !out.isEmpty() && i > 0 && !delimiter.get(i - 1)) {
              out.set(out.size() - 1, out.getLast() + part);
            } else {
              out.add(part);
            }
          }
          case MERGED_WITH_NEXT -> {
            // Only the delimiter right before a piece joins it; a run of delimiters keeps the
            // earlier ones separate (as Hugging Face does).
            if (isDelimiter) {
              if (!pending.isEmpty()) {
                out.add(pending.toString());
                pending.setLength(0);
              }
              pending.append(part);
            } else {
              out.add(pending + part);
              pending.setLength(0);
            }
          }
        }
      }
      if (!pending.isEmpty()) {
        out.add(pending.toString());
      }
    }
  }

  /**
   * Hugging Face's {@code ByteLevel} pre-tokenizer: optionally adds a leading space, optionally
   * splits by the GPT-2 pattern, then rewrites each piece's UTF-8 bytes as {@link GptByteMapping}
   * characters. Must come last in the chain (later steps would see mapped characters).
   */
  record ByteLevel(boolean addPrefixSpace, boolean useRegex) implements Step {
    private static final Pattern GPT2 = compile(GPT2_PATTERN);

    @Override
    public void apply(String piece, List<String> out) {
      String text = addPrefixSpace && !piece.startsWith(" ") ? " " + piece : piece;
      if (!useRegex) {
        out.add(GptByteMapping.encode(text));
        return;
      }
      Matcher m = GPT2.matcher(text);
      int last = 0;
      while (m.find()) {
        if (m.start() > last) {
          out.add(GptByteMapping.encode(text.substring(last, m.start())));
        }
        if (m.end() > m.start()) {
          out.add(GptByteMapping.encode(m.group()));
        }
        last = m.end();
      }
      if (last < text.length()) {
        out.add(GptByteMapping.encode(text.substring(last)));
      }
    }
  }

  private final List<Step> steps;

  /**
   * @param steps the chain; the last must be {@link ByteLevel}
   */
  PreTokenizer(List<Step> steps) {
    if (steps.isEmpty() || !(steps.getLast() instanceof ByteLevel)) {
      throw new IllegalArgumentException("the last pre-tokenizer step must be ByteLevel");
    }
    this.steps = List.copyOf(steps);
  }

  /** The byte-mapped pieces of {@code text}, in order; empty pieces are left out. */
  List<String> split(String text) {
    List<String> pieces = List.of(text);
    for (Step step : steps) {
      List<String> next = new ArrayList<>();
      for (String piece : pieces) {
        step.apply(piece, next);
      }
      pieces = next;
    }
    return pieces.stream().filter(p -> !p.isEmpty()).toList();
  }
}
