package io.kvant.reload;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.lang.System.Logger;
import java.lang.System.Logger.Level;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayDeque;
import java.util.List;
import java.util.Optional;

/**
 * QBOM records of swapped versions: the last {@value #KEEP} in memory, and every one appended as a
 * JSON line to {@code qbom.jsonl} in the configured folder. Thread-safe.
 */
final class QbomLog {
  static final int KEEP = 32;
  private static final Logger LOG = System.getLogger("io.kvant.reload.Qbom");
  private static final ObjectMapper JSON = new ObjectMapper();

  private final Optional<Path> file;
  private final ArrayDeque<QbomRecord> recent = new ArrayDeque<>();

  QbomLog(Optional<Path> dir) {
    this.file = dir.map(d -> d.resolve("qbom.jsonl"));
  }

  Optional<Path> file() {
    return file;
  }

  synchronized void add(QbomRecord r) {
    recent.addLast(r);
    if (recent.size() > KEEP) {
      recent.removeFirst();
    }
    if (file.isPresent()) {
      try {
        Files.createDirectories(file.get().getParent());
        Files.write(
            file.get(),
            (toJson(r) + "\n").getBytes(StandardCharsets.UTF_8),
            StandardOpenOption.CREATE,
            StandardOpenOption.APPEND);
      } catch (IOException e) {
        LOG.log(Level.WARNING, "cannot append QBOM to " + file.get() + ": " + e.getMessage());
      }
    }
  }

  synchronized List<QbomRecord> recent() {
    return List.copyOf(recent);
  }

  static String toJson(QbomRecord r) {
    ObjectNode o = JSON.createObjectNode();
    o.put("model", r.model())
        .put("version", r.version())
        .put("parent", r.parent())
        .put("recipe", r.recipe())
        .put("publisher", r.publisher())
        .put("manifest_sha256", r.manifestSha256())
        .put("calibration_sha256", r.calibrationSha256())
        .put("time", r.time().toString());
    ArrayNode ts = o.putArray("tensors");
    for (QbomRecord.Entry e : r.tensors()) {
      ts.addObject()
          .put("name", e.name())
          .put("type", e.type())
          .put("bits", e.bits())
          .put("group_size", e.groupSize())
          .put("scheme", e.scheme())
          .put("method", e.method())
          .put("source_sha256", e.sourceSha256())
          .put("origin", e.origin());
    }
    return o.toString();
  }
}
