package io.kvant.quant.artifact;

import io.kvant.engine.model.Model;
import io.kvant.engine.model.ModelLoader;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/**
 * Opens whatever a user may point {@code --model} at: a quantized artifact folder (one with {@code
 * manifest.json}, see {@link QuantizedArtifact}), or any format {@link ModelLoader} reads.
 */
public final class ModelOpener {
  private ModelOpener() {}

  /**
   * Loads a model.
   *
   * @param tokenizerPath as {@link ModelLoader#load}; ignored for an artifact, which carries its
   *     own tokenizer
   * @throws io.kvant.engine.format.ModelFormatException naming the file and the problem
   */
  public static Model load(Path path, Optional<Path> tokenizerPath) throws IOException {
    if (Files.isDirectory(path) && QuantizedArtifact.isArtifact(path)) {
      return QuantizedArtifact.load(path);
    }
    return ModelLoader.load(path, tokenizerPath);
  }
}
