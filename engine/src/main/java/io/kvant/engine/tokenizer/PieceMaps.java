package io.kvant.engine.tokenizer;

import java.util.Collections;
import java.util.HashMap;
import java.util.Map;

/**
 * The piece-to-id maps the tokenizers look pieces up in. A {@code HashMap}, not {@code Map.copyOf}:
 * the immutable map probes linearly on {@code String.hashCode}, and a vocabulary of short pieces
 * has dense hash codes that cluster (128k synthetic pieces: 1.4 s to build against 7-9 ms, and
 * every lookup walks the clusters; perf/RESULTS.md, session 36).
 */
final class PieceMaps {
  private PieceMaps() {}

  /** An unmodifiable copy of {@code pieces} (a map the caller was given). */
  static Map<String, Integer> copyOf(Map<String, Integer> pieces) {
    return view(new HashMap<>(pieces));
  }

  /**
   * An unmodifiable view of {@code pieces}, which the caller built and no one else holds: no second
   * copy of a vocabulary at load.
   */
  static Map<String, Integer> view(HashMap<String, Integer> pieces) {
    return Collections.unmodifiableMap(pieces);
  }
}
