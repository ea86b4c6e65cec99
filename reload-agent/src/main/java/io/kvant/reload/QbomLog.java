package io.kvant.reload;

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

  private final Optional<Path> file;
  private final ArrayDeque<io.kvant.quant.artifact.Qbom> recent = new ArrayDeque<>();

  QbomLog(Optional<Path> dir) {
    this.file = dir.map(d -> d.resolve("qbom.jsonl"));
  }

  Optional<Path> file() {
    return file;
  }

  synchronized void add(io.kvant.quant.artifact.Qbom r) {
    recent.addLast(r);
    if (recent.size() > KEEP) {
      recent.removeFirst();
    }
    if (file.isPresent()) {
      try {
        Files.createDirectories(file.get().getParent());
        Files.write(
            file.get(),
            (r.toJsonLine() + "\n").getBytes(StandardCharsets.UTF_8),
            StandardOpenOption.CREATE,
            StandardOpenOption.APPEND);
      } catch (IOException e) {
        LOG.log(Level.WARNING, "cannot append QBOM to " + file.get() + ": " + e.getMessage());
      }
    }
  }

  synchronized List<io.kvant.quant.artifact.Qbom> recent() {
    return List.copyOf(recent);
  }
}
