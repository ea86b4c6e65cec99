package io.kvant.server.chat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kvant.engine.format.gguf.GgufFile;
import io.kvant.engine.format.gguf.GgufReader;
import io.kvant.engine.model.Model;
import io.kvant.engine.tokenizer.Tokenizer;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Finds the chat template of each loaded model: the {@code --chat-template FILE} when one is
 * configured, else the GGUF's {@code tokenizer.chat_template}, else {@code chat_template} in a
 * folder's {@code tokenizer_config.json} (a string, or a list of named templates of which {@code
 * default} or the first is used). Results are kept per model object, so a swapped-in version gets
 * its own. Thread-safe.
 */
public final class ChatTemplates {
  /** The flag an operator passes when a model has no template; named in every refusal. */
  public static final String FLAG = "--chat-template FILE";

  private final Optional<String> override;
  private final Optional<Path> overridePath;
  private final Map<Model, Optional<ChatPrompt>> byModel =
      Collections.synchronizedMap(new IdentityHashMap<>());

  /** A model's template together with the encoder for what it renders. */
  public record ChatPrompt(ChatTemplate template, PromptEncoder encoder) {}

  /**
   * @param overridePath the configured template file, if any
   * @throws IOException naming the file when it cannot be read
   */
  public ChatTemplates(Optional<Path> overridePath) throws IOException {
    this.overridePath = overridePath;
    if (overridePath.isPresent()) {
      try {
        this.override = Optional.of(Files.readString(overridePath.get(), StandardCharsets.UTF_8));
      } catch (IOException e) {
        throw new IOException(
            "--chat-template " + overridePath.get() + ": cannot read: " + e.getMessage(), e);
      }
    } else {
      this.override = Optional.empty();
    }
  }

  /**
   * Checks that the configured template renders a one-message conversation for this model, so a
   * broken file fails at start-up rather than on the first chat request.
   *
   * @throws IOException naming the file and the template's error
   */
  public void check(Model model) throws IOException {
    if (overridePath.isEmpty()) {
      return;
    }
    try {
      forModel(model)
          .orElseThrow()
          .template()
          .render(List.of(new ChatMessage("user", "hello")), true);
    } catch (ChatTemplateException e) {
      throw new IOException("--chat-template " + overridePath.get() + ": " + e.getMessage(), e);
    }
  }

  /** The model's template and encoder, or empty when it has none. */
  public Optional<ChatPrompt> forModel(Model model) {
    return byModel.computeIfAbsent(model, this::load);
  }

  private Optional<ChatPrompt> load(Model model) {
    Optional<ChatTemplate> t;
    Tokenizer tok = model.tokenizer();
    String bos = tok.bos() >= 0 ? tok.piece(tok.bos()) : "";
    String eos = tok.eos() >= 0 ? tok.piece(tok.eos()) : "";
    if (override.isPresent()) {
      t = Optional.of(new ChatTemplate(overridePath.get().toString(), override.get(), bos, eos));
    } else {
      t = fromModelFiles(model.source()).map(s -> new ChatTemplate(s.source, s.text, bos, eos));
    }
    return t.map(template -> new ChatPrompt(template, new PromptEncoder(tok)));
  }

  private record Source(String source, String text) {}

  private static Optional<Source> fromModelFiles(Path path) {
    try {
      if (Files.isRegularFile(path)) {
        if (!isGguf(path)) {
          return Optional.empty();
        }
        try (GgufFile f = GgufReader.open(path)) {
          return f.findString("tokenizer.chat_template")
              .map(text -> new Source(path + " (tokenizer.chat_template)", text));
        }
      }
      Path config = path.resolve("tokenizer_config.json");
      if (!Files.isRegularFile(config)) {
        return Optional.empty();
      }
      JsonNode node = new ObjectMapper().readTree(config.toFile()).get("chat_template");
      if (node == null || node.isNull()) {
        return Optional.empty();
      }
      if (node.isTextual()) {
        return Optional.of(new Source(config + " (chat_template)", node.asText()));
      }
      if (node.isArray()) {
        JsonNode chosen = null;
        for (JsonNode named : node) {
          if (chosen == null || "default".equals(named.path("name").asText())) {
            chosen = named;
          }
        }
        if (chosen != null && chosen.path("template").isTextual()) {
          return Optional.of(
              new Source(
                  config + " (chat_template " + chosen.path("name").asText() + ")",
                  chosen.path("template").asText()));
        }
      }
      return Optional.empty();
    } catch (IOException | RuntimeException e) {
      // The model itself loaded; a template we cannot read is the same as none, and the refusal
      // names the flag that supplies one.
      System.getLogger("io.kvant.server.chat")
          .log(
              System.Logger.Level.WARNING,
              "no usable chat template in " + path + ": " + e.getMessage());
      return Optional.empty();
    }
  }

  private static boolean isGguf(Path path) throws IOException {
    try (var in = Files.newInputStream(path)) {
      byte[] magic = in.readNBytes(4);
      return magic.length == 4 && new String(magic, StandardCharsets.US_ASCII).equals("GGUF");
    }
  }
}
