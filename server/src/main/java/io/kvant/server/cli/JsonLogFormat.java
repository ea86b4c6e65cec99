package io.kvant.server.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.time.Instant;
import java.util.logging.Formatter;
import java.util.logging.LogRecord;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One JSON object per log record, for log pipelines: {@code time}, {@code level}, {@code logger},
 * {@code message}, {@code request_id} when the message names one ({@code request_id=...}), and
 * {@code stack_trace} when a throwable is attached.
 */
final class JsonLogFormat extends Formatter {
  private static final ObjectMapper MAPPER = new ObjectMapper();
  private static final Pattern REQUEST_ID = Pattern.compile("request_id=(\\S+)");

  @Override
  public String format(LogRecord r) {
    ObjectNode o = MAPPER.createObjectNode();
    o.put("time", Instant.ofEpochMilli(r.getMillis()).toString());
    o.put("level", r.getLevel().getName());
    o.put("logger", r.getLoggerName());
    String message = formatMessage(r);
    o.put("message", message);
    Matcher m = REQUEST_ID.matcher(message == null ? "" : message);
    if (m.find()) {
      o.put("request_id", m.group(1));
    }
    if (r.getThrown() != null) {
      StringWriter trace = new StringWriter();
      r.getThrown().printStackTrace(new PrintWriter(trace));
      o.put("stack_trace", trace.toString());
    }
    return o + System.lineSeparator();
  }
}
