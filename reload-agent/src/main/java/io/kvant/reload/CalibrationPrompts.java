package io.kvant.reload;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * Parses {@code calibration.jsonl}: one JSON object per line with a {@code "text"} string (blank
 * lines skipped). Bounded: at most {@value #MAX_LINES} prompts of at most {@value #MAX_LINE}
 * characters; anything else is a {@link Rejection} naming the line.
 */
final class CalibrationPrompts {
  static final int MAX_LINES = 4096;
  static final int MAX_LINE = 1 << 16;
  private static final ObjectMapper JSON = new ObjectMapper();

  private CalibrationPrompts() {}

  static List<String> parse(byte[] bytes) throws Rejection {
    String text;
    try {
      text =
          StandardCharsets.UTF_8
              .newDecoder()
              .onMalformedInput(CodingErrorAction.REPORT)
              .decode(java.nio.ByteBuffer.wrap(bytes))
              .toString();
    } catch (CharacterCodingException e) {
      throw new Rejection(Rejection.Reason.BAD_CALIBRATION, "calibration: not UTF-8");
    }
    List<String> out = new ArrayList<>();
    int lineNo = 0;
    for (String line : text.split("\n", -1)) {
      lineNo++;
      if (line.isBlank()) {
        continue;
      }
      if (out.size() >= MAX_LINES) {
        throw new Rejection(
            Rejection.Reason.BAD_CALIBRATION, "calibration: more than " + MAX_LINES + " prompts");
      }
      if (line.length() > MAX_LINE) {
        throw new Rejection(
            Rejection.Reason.BAD_CALIBRATION, "calibration line " + lineNo + ": too long");
      }
      JsonNode n;
      try {
        n = JSON.readTree(line);
      } catch (JacksonException e) {
        throw new Rejection(
            Rejection.Reason.BAD_CALIBRATION, "calibration line " + lineNo + ": not JSON");
      }
      if (n == null || !n.isObject() || !n.path("text").isTextual()) {
        throw new Rejection(
            Rejection.Reason.BAD_CALIBRATION,
            "calibration line " + lineNo + ": needs a \"text\" string");
      }
      out.add(n.get("text").textValue());
    }
    return out;
  }
}
