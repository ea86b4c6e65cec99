package io.kvant.quant.artifact;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The quantization bill of materials of one version, the one QBOM model: {@code kvant quantize}
 * writes it as {@code qbom.json} into its folder ({@link #toJson}), the reload agent appends one
 * per swapped version to {@code qbom.jsonl} ({@link #toJsonLine}). Schema {@value #SCHEMA}:
 *
 * <pre>{@code
 * {"schema": "kvant.qbom/2", "model", "version", "parent" (optional), "recipe", "publisher",
 *  "manifest_sha256" (optional: the folder's QBOM is written before its manifest), "time",
 *  "entries": [{"tensor", "role", "type", "bits", "group_size", "scheme", "method",
 *               "calibration_sha256", "source_sha256", "origin"}]}
 * }</pre>
 *
 * @param time when it was made (quantized, or swapped in), from the injected clock
 */
public record Qbom(
    String model,
    String version,
    Optional<String> parent,
    String recipe,
    String publisher,
    Optional<String> manifestSha256,
    Instant time,
    List<QbomEntry> entries) {
  public static final String SCHEMA = "kvant.qbom/2";
  public static final String FILE_NAME = "qbom.json";
  private static final ObjectMapper JSON = new ObjectMapper();

  public Qbom {
    entries = List.copyOf(entries);
  }

  /** Pretty-printed JSON (the folder's {@code qbom.json}). */
  public String toJson() {
    try {
      return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(tree());
    } catch (JacksonException e) {
      throw new IllegalStateException(e);
    }
  }

  /** One line of JSON (a record of the agent's {@code qbom.jsonl}). */
  public String toJsonLine() {
    return tree().toString();
  }

  private ObjectNode tree() {
    ObjectNode root = JSON.createObjectNode();
    root.put("schema", SCHEMA).put("model", model).put("version", version);
    parent.ifPresent(p -> root.put("parent", p));
    root.put("recipe", recipe).put("publisher", publisher);
    manifestSha256.ifPresent(s -> root.put("manifest_sha256", s));
    root.put("time", time.toString());
    ArrayNode arr = root.putArray("entries");
    for (QbomEntry e : entries) {
      arr.addObject()
          .put("tensor", e.tensor())
          .put("role", e.role())
          .put("type", e.type())
          .put("bits", e.bits())
          .put("group_size", e.groupSize())
          .put("scheme", e.scheme())
          .put("method", e.method())
          .put("calibration_sha256", e.calibrationSha256())
          .put("source_sha256", e.sourceSha256())
          .put("origin", e.origin().jsonName());
    }
    return root;
  }

  /**
   * Parses a QBOM document (either form).
   *
   * @throws IllegalArgumentException naming the field that is missing or malformed
   */
  public static Qbom parse(String json) {
    JsonNode root;
    try {
      root = JSON.readTree(json);
    } catch (JacksonException e) {
      throw new IllegalArgumentException("qbom: not valid JSON: " + e.getOriginalMessage());
    }
    if (root == null || !root.isObject()) {
      throw new IllegalArgumentException("qbom: the top level must be an object");
    }
    String schema = text(root, "schema", "qbom");
    if (!schema.equals(SCHEMA)) {
      throw new IllegalArgumentException(
          "qbom.schema: expected '" + SCHEMA + "', got '" + schema + "'");
    }
    Instant time;
    try {
      time = Instant.parse(text(root, "time", "qbom"));
    } catch (DateTimeParseException e) {
      throw new IllegalArgumentException("qbom.time: not an ISO-8601 instant");
    }
    JsonNode arr = root.get("entries");
    if (arr == null || !arr.isArray()) {
      throw new IllegalArgumentException("qbom.entries: must be an array");
    }
    List<QbomEntry> entries = new ArrayList<>();
    for (int i = 0; i < arr.size(); i++) {
      String where = "entries[" + i + "]";
      JsonNode e = arr.get(i);
      if (!e.isObject()) {
        throw new IllegalArgumentException(where + ": must be an object");
      }
      QbomEntry.Origin origin;
      try {
        origin = QbomEntry.Origin.ofJson(text(e, "origin", where));
      } catch (IllegalArgumentException x) {
        throw new IllegalArgumentException(
            x.getMessage().startsWith(where)
                ? x.getMessage()
                : where + ".origin: " + x.getMessage());
      }
      entries.add(
          new QbomEntry(
              text(e, "tensor", where),
              text(e, "role", where),
              text(e, "type", where),
              integer(e, "bits", where),
              integer(e, "group_size", where),
              text(e, "scheme", where),
              text(e, "method", where),
              text(e, "calibration_sha256", where),
              text(e, "source_sha256", where),
              origin));
    }
    return new Qbom(
        text(root, "model", "qbom"),
        text(root, "version", "qbom"),
        optional(root, "parent"),
        text(root, "recipe", "qbom"),
        text(root, "publisher", "qbom"),
        optional(root, "manifest_sha256"),
        time,
        entries);
  }

  private static String text(JsonNode n, String key, String where) {
    JsonNode v = n.get(key);
    if (v == null || !v.isTextual()) {
      throw new IllegalArgumentException(where + "." + key + ": missing or not a string");
    }
    return v.textValue();
  }

  private static Optional<String> optional(JsonNode n, String key) {
    JsonNode v = n.get(key);
    if (v == null || v.isNull()) {
      return Optional.empty();
    }
    if (!v.isTextual()) {
      throw new IllegalArgumentException("qbom." + key + ": not a string");
    }
    return Optional.of(v.textValue());
  }

  private static int integer(JsonNode n, String key, String where) {
    JsonNode v = n.get(key);
    if (v == null || !v.isInt()) {
      throw new IllegalArgumentException(where + "." + key + ": missing or not an integer");
    }
    return v.intValue();
  }
}
