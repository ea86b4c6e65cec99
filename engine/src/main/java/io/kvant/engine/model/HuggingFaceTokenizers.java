package io.kvant.engine.model;

import io.kvant.engine.format.ModelFormatException;
import io.kvant.engine.tokenizer.HfTokenizerJson;
import io.kvant.engine.tokenizer.SentencePieceModelFile;
import io.kvant.engine.tokenizer.Tokenizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Finds the tokenizer of a Hugging Face model folder. */
public final class HuggingFaceTokenizers {
  private HuggingFaceTokenizers() {}

  /**
   * {@code tokenizer.json} (byte-level BPE) when present, else SentencePiece's {@code
   * tokenizer.model}.
   */
  public static Tokenizer load(Path dir) throws IOException {
    Path json = dir.resolve("tokenizer.json");
    if (Files.isRegularFile(json)) {
      return HfTokenizerJson.read(json);
    }
    Path sp = dir.resolve("tokenizer.model");
    if (Files.isRegularFile(sp)) {
      return SentencePieceModelFile.read(sp);
    }
    throw new ModelFormatException(dir, "no tokenizer.json or tokenizer.model in the folder");
  }
}
