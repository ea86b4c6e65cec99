package io.kvant.server.chat;

import io.kvant.engine.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Encodes a rendered chat prompt: the control tokens a template writes as text ({@code <s>}, {@code
 * <|im_start|>}, {@code <|eot_id|>}...) become their ids, the text between them is encoded as
 * ordinary text, as Hugging Face tokenizers split on special tokens first. A BOS is put first when
 * the tokenizer has one and the template did not write it (llama.cpp does the same for models that
 * want a BOS).
 *
 * <p>Only rendered templates go through here: user text in a plain completion prompt never turns
 * into control tokens. Immutable and thread-safe.
 */
public final class PromptEncoder {
  private final Tokenizer tokenizer;

  /** Control tokens by their first character, longest first. */
  private final Map<Character, List<Special>> specials = new HashMap<>();

  private record Special(String text, int id) {}

  public PromptEncoder(Tokenizer tokenizer) {
    this.tokenizer = tokenizer;
    for (int id = 0; id < tokenizer.vocabSize(); id++) {
      if (tokenizer.isControl(id)) {
        String piece = tokenizer.piece(id);
        if (!piece.isEmpty()) {
          specials
              .computeIfAbsent(piece.charAt(0), c -> new ArrayList<>())
              .add(new Special(piece, id));
        }
      }
    }
    for (List<Special> l : specials.values()) {
      l.sort(Comparator.comparingInt((Special s) -> s.text.length()).reversed());
    }
  }

  /** The token ids of a rendered prompt. */
  public int[] encode(String prompt) {
    List<int[]> parts = new ArrayList<>();
    int total = 0;
    int textStart = 0;
    int pos = 0;
    while (pos < prompt.length()) {
      Special match = matchAt(prompt, pos);
      if (match == null) {
        pos++;
        continue;
      }
      if (pos > textStart) {
        int[] ids = tokenizer.encode(prompt.substring(textStart, pos), false);
        parts.add(ids);
        total += ids.length;
      }
      parts.add(new int[] {match.id});
      total++;
      pos += match.text.length();
      textStart = pos;
    }
    if (textStart < prompt.length()) {
      int[] ids = tokenizer.encode(prompt.substring(textStart), false);
      parts.add(ids);
      total += ids.length;
    }
    int bos = tokenizer.bos();
    boolean addBos = bos >= 0 && (parts.isEmpty() || parts.getFirst()[0] != bos);
    int[] out = new int[total + (addBos ? 1 : 0)];
    int o = 0;
    if (addBos) {
      out[o++] = bos;
    }
    for (int[] p : parts) {
      System.arraycopy(p, 0, out, o, p.length);
      o += p.length;
    }
    return out;
  }

  private Special matchAt(String text, int pos) {
    List<Special> candidates = specials.get(text.charAt(pos));
    if (candidates == null) {
      return null;
    }
    for (Special s : candidates) {
      if (text.startsWith(s.text, pos)) {
        return s;
      }
    }
    return null;
  }
}
