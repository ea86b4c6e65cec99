package io.kvant.server.sdk;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kvant.client.ChatParams;
import io.kvant.client.Chunk;
import io.kvant.client.Completion;
import io.kvant.client.KvantClient;
import io.kvant.client.KvantRpcException;
import io.kvant.client.TokenStream;
import io.kvant.server.KvantServer;
import io.kvant.server.config.ServerConfig;
import io.kvant.server.config.ServerConfig.ModelSettings;
import io.kvant.server.config.ServerConfig.SchedulerSettings;
import io.kvant.server.config.ServerConfig.SecuritySettings;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code KvantClient.chat} and {@code chatStream} against real kvant servers. */
class ChatTest {
  static final String CHATML =
      "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n'"
          + " }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

  @TempDir Path dir;

  KvantServer start(Optional<Path> template) throws Exception {
    return KvantServer.start(
        new ServerConfig(
            "127.0.0.1",
            0,
            new ModelSettings(
                RealServerTest.model(), "stories", "none", "f32", Optional.empty(), 64),
            new SchedulerSettings(64, 256, 32, 16L << 20, 16, 4096),
            new SecuritySettings(
                Optional.empty(),
                Optional.empty(),
                Optional.empty(),
                Optional.empty(),
                Optional.empty()),
            0,
            Optional.empty(),
            Duration.ofSeconds(5),
            2,
            Optional.empty(),
            io.kvant.server.config.AgentConfig.defaults(),
            new ServerConfig.InteropSettings(Optional.empty(), template, Map.of(), "text")),
        Clock.systemUTC(),
        Optional.empty());
  }

  @Test
  void chatAndChatStreamGiveTheSameGreedyAnswer() throws Exception {
    Path template = Files.writeString(dir.resolve("chatml.jinja"), CHATML);
    KvantServer server = start(Optional.of(template));
    try (KvantClient client =
        KvantClient.builder().targets(RealServerTest.target(server)).build()) {
      ChatParams params =
          ChatParams.builder()
              .system("You tell stories.")
              .user("Tell me about Lily.")
              .maxTokens(24)
              .requestId("chat-sdk-1")
              .build();
      Completion whole = client.chat(params);
      assertThat(whole.text()).isNotEmpty();
      assertThat(whole.requestId()).isEqualTo("chat-sdk-1");
      assertThat(whole.usage().completionTokens()).isEqualTo(24);
      StringBuilder streamed = new StringBuilder();
      try (TokenStream s = client.chatStream(params)) {
        s.forEachRemaining((Chunk c) -> streamed.append(c.text()));
      }
      assertThat(streamed.toString()).isEqualTo(whole.text());
    } finally {
      server.shutdownGracefully();
    }
  }

  @Test
  void aModelWithoutATemplateFailsNamingTheFlagAndBadParamsFailBeforeSending() throws Exception {
    assertThatThrownBy(() -> ChatParams.builder().build())
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("messages: must not be empty");
    assertThatThrownBy(() -> ChatParams.builder().user("x").topP(1.5f).build())
        .hasMessageStartingWith("top_p:");
    KvantServer server = start(Optional.empty());
    try (KvantClient client =
        KvantClient.builder().targets(RealServerTest.target(server)).build()) {
      assertThatThrownBy(() -> client.chat(ChatParams.builder().user("hi").build()))
          .isInstanceOfSatisfying(
              KvantRpcException.class,
              e -> {
                assertThat(e.code()).isEqualTo(io.grpc.Status.Code.FAILED_PRECONDITION);
                assertThat(e.description()).contains("--chat-template FILE");
              });
    } finally {
      server.shutdownGracefully();
    }
  }
}
