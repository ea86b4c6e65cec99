package io.kvant.engine.model;

import java.util.Locale;

/** The role of a weight tensor in a Llama block, as recipes name them. */
public enum Role {
  Q,
  K,
  V,
  O,
  GATE,
  UP,
  DOWN,
  EMBEDDINGS,
  LM_HEAD,
  /** RMSNorm weights: always kept in full precision (float vectors). */
  NORMS;

  /** The name used in recipe files: {@code q, k, v, o, gate, up, down, embeddings, lm_head}. */
  public String jsonName() {
    return name().toLowerCase(Locale.ROOT);
  }

  /** Parses a recipe role name (also accepts {@code embedding}, {@code norm}, {@code output}). */
  public static Role parse(String s) {
    String n = s.toLowerCase(Locale.ROOT).strip();
    switch (n) {
      case "embedding", "embed", "token_embd" -> {
        return EMBEDDINGS;
      }
      case "norm", "norms" -> {
        return NORMS;
      }
      case "output", "head" -> {
        return LM_HEAD;
      }
      default -> {}
    }
    for (Role r : values()) {
      if (r.jsonName().equals(n)) {
        return r;
      }
    }
    throw new IllegalArgumentException(
        "unknown tensor role '" + s + "' (q, k, v, o, gate, up, down, embeddings, lm_head, norms)");
  }
}
