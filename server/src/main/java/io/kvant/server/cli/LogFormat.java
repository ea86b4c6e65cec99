package io.kvant.server.cli;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.time.Instant;
import java.util.logging.ConsoleHandler;
import java.util.logging.Formatter;
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/**
 * One line per log record: {@code time level logger message}, then the stack trace if any. Lines
 * about a request carry {@code request_id=...} in the message, so one grep finds them all.
 */
final class LogFormat extends Formatter {
  @Override
  public String format(LogRecord r) {
    StringBuilder b =
        new StringBuilder()
            .append(Instant.ofEpochMilli(r.getMillis()))
            .append(' ')
            .append(r.getLevel().getName())
            .append(' ')
            .append(r.getLoggerName())
            .append(' ')
            .append(formatMessage(r))
            .append(System.lineSeparator());
    if (r.getThrown() != null) {
      StringWriter trace = new StringWriter();
      r.getThrown().printStackTrace(new PrintWriter(trace));
      b.append(trace);
    }
    return b.toString();
  }

  /** Puts this format on the root logger's console output (standard error). */
  static void install() {
    install("text");
  }

  /** Puts {@code text} (this) or {@code json} ({@link JsonLogFormat}) on the console output. */
  static void install(String format) {
    Logger root = Logger.getLogger("");
    for (Handler h : root.getHandlers()) {
      root.removeHandler(h);
    }
    ConsoleHandler console = new ConsoleHandler();
    console.setFormatter(format.equals("json") ? new JsonLogFormat() : new LogFormat());
    root.addHandler(console);
  }
}
