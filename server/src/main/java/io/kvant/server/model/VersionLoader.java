package io.kvant.server.model;

import java.io.IOException;
import java.nio.file.Path;

/** Loads a model version from a local file or folder (weights recipe and engine as configured). */
@FunctionalInterface
public interface VersionLoader {
  /**
   * @throws IOException naming the file and the problem when it cannot be loaded
   */
  ModelVersion load(Path path) throws IOException;
}
