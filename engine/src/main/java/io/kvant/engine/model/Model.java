package io.kvant.engine.model;

import io.kvant.engine.tokenizer.Tokenizer;
import java.io.IOException;
import java.nio.file.Path;

/**
 * A loaded model: configuration, weights, tokenizer, and the open files the weights are mapped
 * from. Closing it unmaps the files; the weights must not be used afterwards.
 */
public final class Model implements AutoCloseable {
  private final Path source;
  private final String format;
  private final LlamaConfig config;
  private final ModelWeights weights;
  private final Tokenizer tokenizer;
  private final AutoCloseable resources;

  public Model(
      Path source,
      String format,
      LlamaConfig config,
      ModelWeights weights,
      Tokenizer tokenizer,
      AutoCloseable resources) {
    if (tokenizer.vocabSize() > config.vocabSize()) {
      throw new IllegalArgumentException(
          source
              + ": tokenizer has "
              + tokenizer.vocabSize()
              + " tokens but the model only "
              + config.vocabSize());
    }
    this.source = source;
    this.format = format;
    this.config = config;
    this.weights = weights;
    this.tokenizer = tokenizer;
    this.resources = resources;
  }

  /** The file or folder it was loaded from. */
  public Path source() {
    return source;
  }

  /** "gguf", "llama2c" or "safetensors". */
  public String format() {
    return format;
  }

  public LlamaConfig config() {
    return config;
  }

  public ModelWeights weights() {
    return weights;
  }

  public Tokenizer tokenizer() {
    return tokenizer;
  }

  /** The same model with other weights (e.g. quantized), sharing the mapped files. */
  public Model withWeights(ModelWeights newWeights) {
    return new Model(source, format, config, newWeights, tokenizer, () -> {});
  }

  @Override
  public void close() throws IOException {
    try {
      resources.close();
    } catch (IOException | RuntimeException e) {
      throw e;
    } catch (Exception e) {
      throw new IOException(e);
    }
  }
}
