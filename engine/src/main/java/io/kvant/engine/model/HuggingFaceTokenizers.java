package io.kvant.engine.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
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
   * {@code tokenizer.json} (byte-level or SentencePiece-style BPE) when present, else
   * SentencePiece's {@code tokenizer.model}. The EOS token is the one {@code tokenizer_config.json}
   * names, when it names one.
   */
  public static Tokenizer load(Path dir) throws IOException {
    Path json = dir.resolve("tokenizer.json");
    if (Files.isRegularFile(json)) {
      return HfTokenizerJson.load(json, eosToken(dir.resolve("tokenizer_config.json")));
    }
    Path sp = dir.resolve("tokenizer.model");
    if (Files.isRegularFile(sp)) {
      return SentencePieceModelFile.read(sp);
    }
    throw new ModelFormatException(dir, "no tokenizer.json or tokenizer.model in the folder");
  }

  /** {@code eos_token} of a tokenizer_config.json (a string or {content: ...}), or null. */
  static String eosToken(Path config) throws IOException {
    if (!Files.isRegularFile(config)) {
      return null;
    }
    JsonNode root;
    try {
      root = new ObjectMapper().readTree(config.toFile());
    } catch (IOException e) {
      throw new ModelFormatException(config, "not valid JSON: " + e.getMessage(), e);
    }
    JsonNode eos = root == null ? null : root.get("eos_token");
    if (eos == null || eos.isNull()) {
      return null;
    }
    if (eos.isTextual()) {
      return eos.asText();
    }
    if (eos.path("content").isTextual()) {
      return eos.get("content").asText();
    }
    throw new ModelFormatException(config, "eos_token is neither a string nor {content: ...}");
  }
}
