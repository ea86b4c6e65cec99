package io.kvant.engine.testing;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/**
 * Finds the checked-out {@code shared/models} directory (real model files used by tests) from the
 * test's working directory, which Maven sets to the module directory.
 *
 * <p>Walks up from the working directory; for each ancestor {@code d} it tries {@code
 * d/shared/models} and {@code d/../shared/models}, so it works from the main checkout and from
 * worktrees that sit beside {@code shared/}.
 */
public final class SharedModels {
  private SharedModels() {}

  /** The {@code shared/models} directory, or empty if none is found. */
  public static Optional<Path> modelsDir() {
    for (Path d = Path.of("").toAbsolutePath(); d != null; d = d.getParent()) {
      for (Path candidate :
          new Path[] {d.resolve("shared/models"), d.resolve("../shared/models")}) {
        if (Files.isDirectory(candidate)) {
          return Optional.of(candidate.normalize());
        }
      }
    }
    return Optional.empty();
  }

  /**
   * The file {@code relative} under {@code shared/models} (e.g. {@code
   * "stories260K/stories260K.gguf"}). Skips the calling test (a JUnit assumption) if the shared
   * models are not available on this machine.
   */
  public static Path require(String relative) {
    Optional<Path> dir = modelsDir();
    assumeTrue(dir.isPresent(), "shared/models not found above " + Path.of("").toAbsolutePath());
    Path file = dir.get().resolve(relative);
    assumeTrue(Files.isRegularFile(file), "missing shared model file " + file);
    return file;
  }
}
