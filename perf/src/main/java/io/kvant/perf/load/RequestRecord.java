package io.kvant.perf.load;

/**
 * What happened to one request, times in milliseconds from the start of the measured run.
 *
 * @param index request number (warm-up requests are not recorded)
 * @param startMs when it was sent
 * @param ok whether it finished normally (finish reason STOP or LENGTH)
 * @param error the gRPC status code or finish reason of a failure; empty when ok
 * @param ttftMs time to the first chunk with output; {@code -1} if none arrived
 * @param e2eMs time to the last chunk (or to the failure)
 * @param promptTokens prompt tokens as the server counted them (0 if unknown)
 * @param cachedPromptTokens of those, the tokens the server took from its prefix cache instead of
 *     prefilling them (0 if none or unknown)
 * @param outputTokens tokens generated
 * @param itlMs gaps between consecutive output chunks
 * @param modelVersion the version that served it; empty if unknown
 */
public record RequestRecord(
    int index,
    double startMs,
    boolean ok,
    String error,
    double ttftMs,
    double e2eMs,
    int promptTokens,
    int cachedPromptTokens,
    int outputTokens,
    double[] itlMs,
    String modelVersion) {

  /**
   * Time per output token after the first, {@code (e2e - ttft) / (outputTokens - 1)} (vLLM's
   * definition); {@code -1} with fewer than two tokens.
   */
  public double tpotMs() {
    return outputTokens > 1 && ttftMs >= 0 ? (e2eMs - ttftMs) / (outputTokens - 1) : -1;
  }
}
