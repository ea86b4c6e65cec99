package io.kvant.engine.testing;

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

  /**
   * The first 48 greedy token ids stories260K generates after BOS, as stories260K/SOURCE.md records
   * them (llama2.c's output, confirmed there by an independent float64 reference).
   */
  public static final int[] STORIES260K_GOLDEN =
      new int[] {
        403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396,
            267,
        337, 410, 408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385, 328, 432, 358, 394, 261,
            370,
        432, 352, 266, 268, 388, 426, 338, 391, 266, 267
      };

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
   * "stories260K/stories260K.gguf"}).
   *
   * @throws IllegalStateException if the shared models are not beside the checkout: the project's
   *     tests need them (CI has them), and a skipped test would hide that they did not run
   */
  public static Path require(String relative) {
    Optional<Path> dir = modelsDir();
    if (dir.isEmpty()) {
      throw new IllegalStateException(
          "shared/models not found above " + Path.of("").toAbsolutePath());
    }
    Path file = dir.get().resolve(relative);
    if (!Files.isRegularFile(file)) {
      throw new IllegalStateException("missing shared model file " + file);
    }
    return file;
  }
}
