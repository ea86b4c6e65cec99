package io.kvant.engine.tokenizer;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Locates the shared real model files ({@code shared/models}) from wherever the tests run: walks up
 * from the working directory and checks {@code <ancestor>/shared/models} and {@code
 * <ancestor>/../shared/models} (the latter for git worktrees that sit beside {@code shared}). Tests
 * needing a file that is not there are skipped, not failed.
 */
final class TestModels {
  private TestModels() {}

  /** The {@code shared/models} directory, or null if none is found. */
  static Path modelsDir() {
    for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
      for (Path candidate :
          new Path[] {dir.resolve("shared/models"), dir.resolve("../shared/models").normalize()}) {
        if (Files.isDirectory(candidate)) {
          return candidate;
        }
      }
    }
    return null;
  }

  /** {@code shared/models/<relative>}; skips the calling test if it does not exist. */
  static Path require(String relative) {
    Path dir = modelsDir();
    assumeTrue(dir != null, "shared/models not found above " + Path.of("").toAbsolutePath());
    Path file = dir.resolve(relative);
    assumeTrue(Files.isRegularFile(file), "missing shared model file " + file);
    return file;
  }

  static Path llama2TokenizerModel() {
    return require("llama2-tokenizer-32k/tokenizer.model");
  }

  static Path llama2TokenizerBin() {
    return require("llama2-tokenizer-32k/tokenizer.bin");
  }

  static Path stories260KTokenizerBin() {
    return require("stories260K/tok512.bin");
  }
}
