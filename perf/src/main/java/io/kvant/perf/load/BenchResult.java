package io.kvant.perf.load;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * The JSON result file of {@code bench serve} and {@code bench swap}: one {@link Point} per
 * concurrency of a sweep (one point otherwise), and for a swap run the swaps and the latency
 * before, during and after each.
 *
 * @param kind {@code "serve"} or {@code "swap"}
 * @param target the server
 * @param startedAt wall-clock start, ISO-8601
 * @param options the command-line options as given
 * @param points measured points
 * @param swaps swaps triggered (swap runs; empty otherwise)
 * @param swapPhases latency around each swap (swap runs; empty otherwise)
 */
public record BenchResult(
    String kind,
    String target,
    String startedAt,
    Map<String, String> options,
    List<Point> points,
    List<SwapEvent> swaps,
    List<SwapPhase> swapPhases) {

  /**
   * One measured load level.
   *
   * @param concurrency users (closed loop) or in-flight cap (open loop, 0 = none)
   * @param rate offered rate (open loop; 0 for closed loop)
   * @param summary the figures
   * @param records per-request records; empty unless kept ({@code --records}, swap runs)
   */
  public record Point(int concurrency, double rate, Summary summary, List<RequestRecord> records) {}

  /**
   * A swap triggered during load, times in ms from the start of the measured run.
   *
   * @param target the version or path swapped to
   * @param startMs when the admin call was made
   * @param endMs when it returned
   * @param ok whether it succeeded
   * @param detail the new serving version, or the error
   */
  public record SwapEvent(String target, double startMs, double endMs, boolean ok, String detail) {}

  /**
   * Requests around one swap, grouped by start time: {@code before} (after the previous swap's
   * "during" until this swap starts), {@code during} (from its start until {@code window} after it
   * returned, or the next swap's start if sooner) and {@code after} (from then until the next swap
   * starts, or the end; the same requests as the next swap's {@code before}).
   *
   * @param swap index into {@code swaps}
   * @param before requests started before
   * @param during requests started during
   * @param after requests started after
   */
  public record SwapPhase(int swap, PhaseStats before, PhaseStats during, PhaseStats after) {}

  /**
   * Requests of one phase.
   *
   * @param requests requests started in the phase
   * @param failed of which failed
   * @param ttft time to first token of the successful ones
   * @param e2e end-to-end latency of the successful ones
   * @param versions model versions that served them
   */
  public record PhaseStats(
      int requests, int failed, LatencyStats ttft, LatencyStats e2e, List<String> versions) {}

  private static ObjectMapper mapper() {
    return new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
  }

  /** Writes this result as JSON. */
  public void write(Path file) throws IOException {
    mapper().writeValue(file.toFile(), this);
  }

  /** Reads a result written by {@link #write}. */
  public static BenchResult read(Path file) throws IOException {
    return mapper().readValue(file.toFile(), BenchResult.class);
  }
}
