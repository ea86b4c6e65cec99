package io.kvant.server.chat;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A Hugging Face-style chat template (Jinja), rendered with Jinjava the way {@code transformers}'
 * {@code apply_chat_template} renders it: {@code trim_blocks} and {@code lstrip_blocks} on, and the
 * variables {@code messages} (a list of {@code {role, content}}), {@code add_generation_prompt},
 * {@code bos_token}, {@code eos_token}, and the function {@code raise_exception(message)}.
 *
 * <p>Immutable and thread-safe: each render gets its own interpreter.
 */
public final class ChatTemplate {
  private final String source;
  private final String text;
  private final String bosToken;
  private final String eosToken;
  private final Jinjava jinja;

  /**
   * @param source where the template came from, for messages (a file, "GGUF
   *     tokenizer.chat_template")
   * @param text the Jinja template
   * @param bosToken the model's BOS token as text (e.g. {@code <s>}), empty when it has none
   * @param eosToken the model's EOS token as text, empty when it has none
   */
  public ChatTemplate(String source, String text, String bosToken, String eosToken) {
    this.source = source;
    this.text = text;
    this.bosToken = bosToken;
    this.eosToken = eosToken;
    this.jinja =
        new Jinjava(
            JinjavaConfig.newBuilder()
                .withTrimBlocks(true)
                .withLstripBlocks(true)
                .withFailOnUnknownTokens(false)
                .build());
    jinja
        .getGlobalContext()
        .registerFunction(
            new ELFunctionDefinition(
                "", "raise_exception", ChatTemplate.class, "raiseException", String.class));
  }

  /** Where the template came from. */
  public String source() {
    return source;
  }

  /**
   * Renders a conversation into a prompt.
   *
   * @param addGenerationPrompt whether to end with the template's assistant header
   * @throws ChatTemplateException when the template refuses the conversation or fails
   */
  public String render(List<ChatMessage> messages, boolean addGenerationPrompt) {
    List<Map<String, Object>> list = new ArrayList<>(messages.size());
    for (ChatMessage m : messages) {
      Map<String, Object> entry = new HashMap<>();
      entry.put("role", m.role());
      entry.put("content", m.content());
      list.add(entry);
    }
    Map<String, Object> bindings = new HashMap<>();
    bindings.put("messages", list);
    bindings.put("add_generation_prompt", addGenerationPrompt);
    bindings.put("bos_token", bosToken);
    bindings.put("eos_token", eosToken);
    RenderResult result = jinja.renderForResult(text, bindings);
    for (TemplateError e : result.getErrors()) {
      Throwable cause = e.getException();
      while (cause != null) {
        if (cause instanceof Raised raised) {
          throw new ChatTemplateException(raised.templateMessage());
        }
        cause = cause.getCause();
      }
      if (e.getMessage() != null && e.getMessage().contains(Raised.MARK)) {
        String m = e.getMessage();
        throw new ChatTemplateException(m.substring(m.indexOf(Raised.MARK) + Raised.MARK.length()));
      }
    }
    for (TemplateError e : result.getErrors()) {
      if (e.getSeverity() == TemplateError.ErrorType.FATAL) {
        throw new ChatTemplateException(
            "chat template ("
                + source
                + ") failed at line "
                + e.getLineno()
                + ": "
                + e.getMessage());
      }
    }
    return result.getOutput();
  }

  /** {@code raise_exception(message)} in a template. */
  public static Object raiseException(String message) {
    throw new Raised(message);
  }

  /** What {@code raise_exception} throws; carried out of Jinjava's error list. */
  static final class Raised extends RuntimeException {
    static final String MARK = "raise_exception: ";

    Raised(String message) {
      super(MARK + message, null, false, false);
    }

    String templateMessage() {
      return getMessage().substring(MARK.length());
    }
  }
}
