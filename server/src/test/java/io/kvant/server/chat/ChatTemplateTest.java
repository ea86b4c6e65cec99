package io.kvant.server.chat;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The public chat templates of Llama-3-Instruct, Qwen2 (ChatML) and Mistral-7B-Instruct-v0.2, as
 * their tokenizer_config.json files carry them, rendered against prompts written out by hand from
 * the templates' definitions (test resources {@code chat/*.expected.txt}).
 */
class ChatTemplateTest {
  /** A system prompt, a user turn with padding whitespace, an answer, and a second question. */
  static final List<ChatMessage> PIRATE =
      List.of(
          new ChatMessage("system", "You are a pirate."),
          new ChatMessage("user", "  Hello!  "),
          new ChatMessage("assistant", "Arr, hello."),
          new ChatMessage("user", "Where is the treasure?"));

  @Test
  void llama3TrimsContentAndStartsWithBos() throws IOException {
    ChatTemplate t = template("llama3", "<|begin_of_text|>", "<|end_of_text|>");
    assertThat(t.render(PIRATE, true)).isEqualTo(resource("llama3.expected.txt"));
  }

  @Test
  void chatMlKeepsContentAsIs() throws IOException {
    ChatTemplate t = template("chatml-qwen2", "", "<|endoftext|>");
    assertThat(t.render(PIRATE, true)).isEqualTo(resource("chatml-qwen2.expected.txt"));
  }

  @Test
  void chatMlAddsQwensDefaultSystemPromptAndNoGenerationPromptWhenNotAsked() throws IOException {
    ChatTemplate t = template("chatml-qwen2", "", "<|endoftext|>");
    assertThat(t.render(List.of(new ChatMessage("user", "Hello!")), false))
        .isEqualTo(resource("chatml-qwen2.default-system.expected.txt"));
  }

  @Test
  void mistralAlternatesInstBlocksWithEosAfterAnswers() throws IOException {
    ChatTemplate t = template("mistral-v0.2", "<s>", "</s>");
    assertThat(t.render(PIRATE.subList(1, 4), true))
        .isEqualTo(resource("mistral-v0.2.expected.txt"));
  }

  @Test
  void mistralRaisesOnASystemMessageWithTheTemplatesOwnMessage() throws IOException {
    ChatTemplate t = template("mistral-v0.2", "<s>", "</s>");
    assertThatThrownBy(() -> t.render(PIRATE, true))
        .isInstanceOf(ChatTemplateException.class)
        .hasMessage("Conversation roles must alternate user/assistant/user/assistant/...");
    assertThatThrownBy(() -> t.render(List.of(new ChatMessage("tool", "x")), true))
        .isInstanceOf(ChatTemplateException.class)
        .hasMessage("Conversation roles must alternate user/assistant/user/assistant/...");
    assertThatThrownBy(
            () ->
                t.render(List.of(new ChatMessage("user", "a"), new ChatMessage("tool", "x")), true))
        .isInstanceOf(ChatTemplateException.class)
        .hasMessage("Only user and assistant roles are supported!");
  }

  @Test
  void backslashEscapesInStringLiteralsAreNewlinesAsInJinja() throws IOException {
    ChatTemplate t = template("chatml", "", "");
    assertThat(t.render(List.of(new ChatMessage("user", "Hi")), true))
        .isEqualTo("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  }

  @Test
  void aBrokenTemplateFailsWithItsSource() {
    ChatTemplate t = new ChatTemplate("broken.jinja", "{% for m in messages %}{{ m", "", "");
    assertThatThrownBy(() -> t.render(PIRATE, true))
        .isInstanceOf(ChatTemplateException.class)
        .hasMessageContaining("broken.jinja");
  }

  static ChatTemplate template(String name, String bos, String eos) throws IOException {
    return new ChatTemplate(name, resource(name + ".jinja"), bos, eos);
  }

  static String resource(String name) throws IOException {
    try (InputStream in = ChatTemplateTest.class.getResourceAsStream("/chat/" + name)) {
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
  }
}
