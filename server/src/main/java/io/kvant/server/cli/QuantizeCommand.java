package io.kvant.server.cli;

import java.io.PrintStream;
import java.util.List;
import java.util.Map;

/** {@code kvant quantize}: placeholder until the artifact writer lands. */
final class QuantizeCommand {
  private final PrintStream err;

  QuantizeCommand(PrintStream out, PrintStream err, Map<String, String> env) {
    this.err = err;
  }

  int run(List<String> args) {
    err.println("kvant quantize: not built yet");
    return 1;
  }
}
