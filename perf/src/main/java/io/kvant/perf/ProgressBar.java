package io.kvant.perf;

import java.io.PrintStream;
import java.util.function.LongSupplier;

/**
 * A one-line progress bar redrawn in place with a carriage return, at most every 200 ms, on a
 * stream meant for humans (stderr), so that results on stdout stay clean. Thread-safe.
 */
public final class ProgressBar {
  private static final int WIDTH = 30;
  private static final long MIN_REDRAW_NANOS = 200_000_000L;

  private final PrintStream to;
  private final String label;
  private final LongSupplier nanoTime;
  private final long start;
  private long lastDraw = Long.MIN_VALUE;
  private boolean drawn;

  public ProgressBar(PrintStream to, String label, LongSupplier nanoTime) {
    this.to = to;
    this.label = label;
    this.nanoTime = nanoTime;
    this.start = nanoTime.getAsLong();
  }

  /** Shows {@code fraction} (clamped to [0, 1]) done with a status text. */
  public synchronized void update(double fraction, String status) {
    long now = nanoTime.getAsLong();
    if (drawn && now - lastDraw < MIN_REDRAW_NANOS && fraction < 1) {
      return;
    }
    lastDraw = now;
    drawn = true;
    double f = Math.max(0, Math.min(1, fraction));
    int filled = (int) Math.round(f * WIDTH);
    to.printf(
        "\r%s [%s%s] %3.0f%% %5.1fs %s",
        label,
        "#".repeat(filled),
        ".".repeat(WIDTH - filled),
        f * 100,
        (now - start) / 1e9,
        status);
    to.flush();
  }

  /** Ends the line. */
  public synchronized void finish() {
    if (drawn) {
      to.println();
      to.flush();
    }
  }
}
