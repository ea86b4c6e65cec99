package io.kvant.perf.load;

import io.kvant.perf.cli.Args;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Service-level objectives for goodput: a request counts as good if it succeeded and meets every
 * objective given (in milliseconds; {@code <= 0} means not set). Goodput is good requests per
 * second (as in DistServe and vLLM's {@code --goodput}).
 *
 * @param ttftMs bound on time to first token
 * @param tpotMs bound on time per output token
 * @param e2eMs bound on end-to-end latency
 */
public record Slo(double ttftMs, double tpotMs, double e2eMs) {
  /** No objectives: every successful request is good. */
  public static final Slo NONE = new Slo(0, 0, 0);

  /**
   * Parses {@code ttft=500ms,tpot=50ms,e2e=10s} (any subset, durations as {@link
   * Args#parseDuration}).
   *
   * @throws IllegalArgumentException for an unknown metric or a bad duration
   */
  public static Slo parse(String spec) {
    Map<String, Double> m = new LinkedHashMap<>();
    for (String part : spec.split(",")) {
      if (part.isBlank()) {
        continue;
      }
      String[] kv = part.split("=", 2);
      if (kv.length != 2
          || !(kv[0].equals("ttft") || kv[0].equals("tpot") || kv[0].equals("e2e"))) {
        throw new IllegalArgumentException(
            "--slo: '" + part + "': use ttft=D, tpot=D and/or e2e=D, e.g. ttft=500ms");
      }
      Duration d = Args.parseDuration("slo", kv[1]);
      m.put(kv[0], d.toNanos() / 1e6);
    }
    return new Slo(
        m.getOrDefault("ttft", 0.0), m.getOrDefault("tpot", 0.0), m.getOrDefault("e2e", 0.0));
  }

  /** Whether {@code r} succeeded and meets every objective set. */
  public boolean met(RequestRecord r) {
    if (!r.ok()) {
      return false;
    }
    if (ttftMs > 0 && !(r.ttftMs() >= 0 && r.ttftMs() <= ttftMs)) {
      return false;
    }
    if (tpotMs > 0 && r.tpotMs() > tpotMs) {
      return false;
    }
    return !(e2eMs > 0 && r.e2eMs() > e2eMs);
  }
}
