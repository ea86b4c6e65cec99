package io.kvant.engine.sample;

import java.util.List;

/**
 * Finds stop sequences in streamed text without ever emitting part of one.
 *
 * <p>Text is appended as it is decoded; {@link #append} returns the part that is safe to emit now:
 * everything except a tail that could still grow into a stop sequence. Once a stop sequence is
 * found, the text before it is released, the stop string and anything after it are dropped, and
 * {@link #stopped()} turns true.
 */
public final class StopMatcher {
  private final List<String> stops;
  private final StringBuilder pending = new StringBuilder();
  private boolean stopped;

  public StopMatcher(List<String> stops) {
    for (String s : stops) {
      if (s.isEmpty()) {
        throw new IllegalArgumentException("stop: stop sequences must not be empty");
      }
    }
    this.stops = List.copyOf(stops);
  }

  /** True once a stop sequence has been seen. */
  public boolean stopped() {
    return stopped;
  }

  /** Adds decoded text and returns what may be emitted now. */
  public String append(String text) {
    if (stopped) {
      return "";
    }
    pending.append(text);
    int first = -1;
    for (String s : stops) {
      int at = pending.indexOf(s);
      if (at >= 0 && (first < 0 || at < first)) {
        first = at;
      }
    }
    if (first >= 0) {
      stopped = true;
      String out = pending.substring(0, first);
      pending.setLength(0);
      return out;
    }
    int hold = 0;
    for (String s : stops) {
      int max = Math.min(s.length() - 1, pending.length());
      for (int k = max; k > hold; k--) {
        if (pending.toString().regionMatches(pending.length() - k, s, 0, k)) {
          hold = k;
          break;
        }
      }
    }
    String out = pending.substring(0, pending.length() - hold);
    pending.delete(0, pending.length() - hold);
    return out;
  }

  /** Releases the held-back tail at the end of generation (no stop sequence completed it). */
  public String finish() {
    String out = stopped ? "" : pending.toString();
    pending.setLength(0);
    return out;
  }
}
