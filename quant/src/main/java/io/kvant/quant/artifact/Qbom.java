package io.kvant.quant.artifact;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code qbom.json}: the quantization bill of materials of a version, one {@link QbomEntry} per
 * tensor: {@code {"schema": "kvant.qbom/v1", "model", "version", "recipe", "entries": [{"tensor",
 * "role", "type", "bits", "group_size", "scheme", "method", "calibration_sha256", "source_sha256",
 * "time", "publisher"}]}}.
 */
public record Qbom(String model, String version, String recipe, List<QbomEntry> entries) {
  public static final String SCHEMA = "kvant.qbom/v1";
  public static final String FILE_NAME = "qbom.json";
  private static final ObjectMapper JSON = new ObjectMapper();

  public Qbom {
    entries = List.copyOf(entries);
  }

  public String toJson() {
    ObjectNode root = JSON.createObjectNode();
    root.put("schema", SCHEMA).put("model", model).put("version", version).put("recipe", recipe);
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
          .put("time", e.time().toString())
          .put("publisher", e.publisher());
    }
    try {
      return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * @throws IllegalArgumentException if malformed
   */
  public static Qbom parse(String json) {
    try {
      JsonNode root = JSON.readTree(json);
      if (root == null || !SCHEMA.equals(root.path("schema").asText())) {
        throw new IllegalArgumentException("qbom: schema must be '" + SCHEMA + "'");
      }
      List<QbomEntry> entries = new ArrayList<>();
      for (JsonNode e : root.path("entries")) {
        entries.add(
            new QbomEntry(
                e.path("tensor").asText(null),
                e.path("role").asText(),
                e.path("type").asText(null),
                e.path("bits").asInt(),
                e.path("group_size").asInt(),
                e.path("scheme").asText(),
                e.path("method").asText(),
                e.path("calibration_sha256").asText(),
                e.path("source_sha256").asText(),
                Instant.parse(e.path("time").asText()),
                e.path("publisher").asText()));
      }
      return new Qbom(
          root.path("model").asText(),
          root.path("version").asText(),
          root.path("recipe").asText(),
          entries);
    } catch (IOException | RuntimeException e) {
      throw new IllegalArgumentException("qbom: " + e.getMessage(), e);
    }
  }
}
