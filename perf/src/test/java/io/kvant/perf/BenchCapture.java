package io.kvant.perf;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Map;

/** Runs {@code kvant bench} in-process with its standard output and error captured (tests). */
final class BenchCapture {
  private final ByteArrayOutputStream out = new ByteArrayOutputStream();
  private final ByteArrayOutputStream err = new ByteArrayOutputStream();

  /** {@link BenchMain#run} with an empty environment; returns the exit code. */
  int run(String... args) {
    return new BenchMain(
            new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8),
            Map.of())
        .run(args);
  }

  /** Everything written to standard output so far. */
  String out() {
    return out.toString(StandardCharsets.UTF_8);
  }

  /** Everything written to standard error so far. */
  String err() {
    return err.toString(StandardCharsets.UTF_8);
  }
}
