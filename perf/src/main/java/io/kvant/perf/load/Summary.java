package io.kvant.perf.load;

import java.util.List;

/**
 * The figures of one measured run (warm-up excluded), as vLLM's {@code bench serve} reports them.
 *
 * @param completed requests that finished normally
 * @param failed requests that failed
 * @param durationS from the first request sent to the last one finished
 * @param requestThroughput completed requests per second
 * @param outputTokenThroughput generated tokens per second (completed requests)
 * @param totalTokenThroughput prompt plus generated tokens per second (completed requests)
 * @param promptTokens prompt tokens of completed requests
 * @param cachedPromptTokens of those, the tokens the server's prefix cache supplied (a level whose
 *     prompts an earlier level already sent is partly a cache benchmark)
 * @param outputTokens generated tokens of completed requests
 * @param ttft time to first token (completed requests)
 * @param tpot time per output token after the first (requests with two or more tokens)
 * @param itl gaps between consecutive chunks, pooled over completed requests
 * @param e2e end-to-end latency (completed requests)
 * @param slo the objectives of {@code goodRequests}
 * @param goodRequests completed requests meeting every objective
 * @param goodput good requests per second
 */
public record Summary(
    int completed,
    int failed,
    double durationS,
    double requestThroughput,
    double outputTokenThroughput,
    double totalTokenThroughput,
    long promptTokens,
    long cachedPromptTokens,
    long outputTokens,
    LatencyStats ttft,
    LatencyStats tpot,
    LatencyStats itl,
    LatencyStats e2e,
    Slo slo,
    int goodRequests,
    double goodput) {

  /**
   * Summarises records over a run of {@code durationS} seconds.
   *
   * @throws IllegalArgumentException if {@code durationS} is not positive
   */
  public static Summary of(List<RequestRecord> records, double durationS, Slo slo) {
    if (!(durationS > 0)) {
      throw new IllegalArgumentException("duration must be positive, got " + durationS);
    }
    int completed = 0;
    int failed = 0;
    int good = 0;
    long prompt = 0;
    long cached = 0;
    long output = 0;
    int itlCount = 0;
    for (RequestRecord r : records) {
      if (r.ok()) {
        completed++;
        prompt += r.promptTokens();
        cached += r.cachedPromptTokens();
        output += r.outputTokens();
        itlCount += r.itlMs().length;
      } else {
        failed++;
      }
      if (slo.met(r)) {
        good++;
      }
    }
    double[] ttft =
        records.stream()
            .filter(RequestRecord::ok)
            .mapToDouble(RequestRecord::ttftMs)
            .filter(v -> v >= 0)
            .toArray();
    double[] e2e = new double[completed];
    double[] itl = new double[itlCount];
    double[] tpot =
        records.stream()
            .filter(RequestRecord::ok)
            .mapToDouble(RequestRecord::tpotMs)
            .filter(v -> v >= 0)
            .toArray();
    int i = 0;
    int j = 0;
    for (RequestRecord r : records) {
      if (r.ok()) {
        e2e[i++] = r.e2eMs();
        System.arraycopy(r.itlMs(), 0, itl, j, r.itlMs().length);
        j += r.itlMs().length;
      }
    }
    return new Summary(
        completed,
        failed,
        durationS,
        completed / durationS,
        output / durationS,
        (prompt + output) / durationS,
        prompt,
        cached,
        output,
        LatencyStats.of(ttft),
        LatencyStats.of(tpot),
        LatencyStats.of(itl),
        LatencyStats.of(e2e),
        slo,
        good,
        good / durationS);
  }
}
