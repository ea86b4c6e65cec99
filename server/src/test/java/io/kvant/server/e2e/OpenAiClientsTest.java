package io.kvant.server.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.http.StreamResponse;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.chat.completions.ChatCompletionStreamOptions;
import com.openai.models.completions.Completion;
import com.openai.models.completions.CompletionCreateParams;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import dev.langchain4j.model.openai.OpenAiChatModel;
import dev.langchain4j.model.openai.OpenAiStreamingChatModel;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The official OpenAI Java client and LangChain4j's OpenAI chat models, pointed at a running kvant
 * (stories260K, a ChatML template, a Generation token) over a real socket on 127.0.0.1: both
 * complete and stream, and what they stream adds up to what they get whole (greedy).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class OpenAiClientsTest {
  static final String TOKEN = "sk-kvant-test";
  static final String QUESTION = "Who found the little cat?";

  TestServer s;
  String base;

  @BeforeAll
  void start() throws Exception {
    s =
        TestServer.builder()
            .http()
            .chatTemplate(Path.of("src/test/resources/chat/chatml.jinja"))
            .generationToken(TOKEN)
            .start();
    base = s.httpBase() + "/v1";
  }

  @AfterAll
  void stop() throws Exception {
    s.close();
  }

  @Test
  void openAiJavaClientCompletesAndStreams() {
    OpenAIClient client =
        OpenAIOkHttpClient.builder().baseUrl(base).apiKey(TOKEN).maxRetries(0).build();
    try {
      Completion completion =
          client
              .completions()
              .create(
                  CompletionCreateParams.builder()
                      .model("stories")
                      .prompt("Once upon a time")
                      .maxTokens(10)
                      .temperature(0.0)
                      .build());
      assertThat(completion.choices().getFirst().text()).isNotEmpty();
      assertThat(completion.usage().orElseThrow().completionTokens()).isEqualTo(10);

      ChatCompletionCreateParams params =
          ChatCompletionCreateParams.builder()
              .model("stories")
              .addSystemMessage("Tell a short story.")
              .addUserMessage(QUESTION)
              .maxCompletionTokens(16)
              .temperature(0.0)
              .build();
      ChatCompletion whole = client.chat().completions().create(params);
      String answer = whole.choices().getFirst().message().content().orElseThrow();
      assertThat(answer).isNotEmpty();

      StringBuilder streamed = new StringBuilder();
      long[] usage = {-1};
      try (StreamResponse<ChatCompletionChunk> stream =
          client
              .chat()
              .completions()
              .createStreaming(
                  params.toBuilder()
                      .streamOptions(
                          ChatCompletionStreamOptions.builder().includeUsage(true).build())
                      .build())) {
        stream.stream()
            .forEach(
                chunk -> {
                  chunk.choices().forEach(c -> c.delta().content().ifPresent(streamed::append));
                  chunk.usage().ifPresent(u -> usage[0] = u.completionTokens());
                });
      }
      assertThat(streamed.toString()).isEqualTo(answer);
      assertThat(usage[0]).isEqualTo(whole.usage().orElseThrow().completionTokens());
    } finally {
      client.close();
    }
  }

  @Test
  void langChain4jChatModelsCompleteAndStream() throws Exception {
    OpenAiChatModel model =
        OpenAiChatModel.builder()
            .baseUrl(base)
            .apiKey(TOKEN)
            .modelName("stories")
            .temperature(0.0)
            .maxTokens(16)
            .timeout(Duration.ofSeconds(30))
            .maxRetries(0)
            .build();
    String answer = model.chat(QUESTION);
    assertThat(answer).isNotEmpty();

    OpenAiStreamingChatModel streaming =
        OpenAiStreamingChatModel.builder()
            .baseUrl(base)
            .apiKey(TOKEN)
            .modelName("stories")
            .temperature(0.0)
            .maxTokens(16)
            .timeout(Duration.ofSeconds(30))
            .build();
    StringBuilder partial = new StringBuilder();
    CompletableFuture<ChatResponse> done = new CompletableFuture<>();
    streaming.chat(
        QUESTION,
        new StreamingChatResponseHandler() {
          @Override
          public void onPartialResponse(String text) {
            partial.append(text);
          }

          @Override
          public void onCompleteResponse(ChatResponse response) {
            done.complete(response);
          }

          @Override
          public void onError(Throwable error) {
            done.completeExceptionally(error);
          }
        });
    ChatResponse response = done.get(60, TimeUnit.SECONDS);
    assertThat(partial.toString()).isEqualTo(answer);
    assertThat(response.aiMessage().text()).isEqualTo(answer);
  }

  @Test
  void aWrongKeyIsRefusedByBothClients() {
    OpenAIClient client =
        OpenAIOkHttpClient.builder().baseUrl(base).apiKey("wrong").maxRetries(0).build();
    try {
      org.assertj.core.api.Assertions.assertThatThrownBy(
              () ->
                  client
                      .completions()
                      .create(
                          CompletionCreateParams.builder()
                              .model("stories")
                              .prompt("x")
                              .maxTokens(1)
                              .build()))
          .isInstanceOf(com.openai.errors.UnauthorizedException.class)
          .hasMessageContaining("Incorrect API key");
    } finally {
      client.close();
    }
  }
}
