package io.kvant.perf.load;

import java.io.PrintStream;

/** Prints a {@link Summary} as a table, in the layout of vLLM's {@code bench serve}. */
public final class ResultTable {
  private ResultTable() {}

  /** Prints the summary of one point. */
  public static void print(PrintStream out, String title, Summary s) {
    String line = "=".repeat(50);
    out.println(line);
    out.println(center(title, 50));
    out.println(line);
    row(out, "Successful requests:", "%d", s.completed());
    row(out, "Failed requests:", "%d", s.failed());
    row(out, "Benchmark duration (s):", "%.2f", s.durationS());
    row(out, "Total input tokens:", "%d", s.promptTokens());
    row(
        out,
        "Input tokens from prefix cache:",
        "%s",
        String.format(
            java.util.Locale.ROOT,
            "%d (%.1f%%)",
            s.cachedPromptTokens(),
            s.promptTokens() == 0 ? 0.0 : 100.0 * s.cachedPromptTokens() / s.promptTokens()));
    row(out, "Total generated tokens:", "%d", s.outputTokens());
    row(out, "Request throughput (req/s):", "%.2f", s.requestThroughput());
    row(out, "Output token throughput (tok/s):", "%.2f", s.outputTokenThroughput());
    row(out, "Total token throughput (tok/s):", "%.2f", s.totalTokenThroughput());
    row(out, "Good requests (SLO met):", "%d", s.goodRequests());
    row(out, "Request goodput (req/s):", "%.2f", s.goodput());
    metric(out, "Time to First Token", "TTFT", s.ttft());
    metric(out, "Time per Output Token (excl. 1st token)", "TPOT", s.tpot());
    metric(out, "Inter-token Latency", "ITL", s.itl());
    metric(out, "End-to-end Latency", "E2EL", s.e2e());
    out.println(line);
  }

  private static void metric(PrintStream out, String title, String abbr, LatencyStats l) {
    String t = " " + title + " ";
    int pad = Math.max(0, 50 - t.length());
    out.println("-".repeat(pad / 2) + t + "-".repeat(pad - pad / 2));
    row(out, "Mean " + abbr + " (ms):", "%.2f", l.mean());
    row(out, "Median " + abbr + " (ms):", "%.2f", l.median());
    row(out, "P90 " + abbr + " (ms):", "%.2f", l.p90());
    row(out, "P99 " + abbr + " (ms):", "%.2f", l.p99());
  }

  private static void row(PrintStream out, String label, String fmt, Object v) {
    out.printf("%-40s%10s%n", label, String.format(fmt, v));
  }

  private static String center(String s, int width) {
    int pad = Math.max(0, width - s.length());
    return " ".repeat(pad / 2) + s + " ".repeat(pad - pad / 2);
  }
}
