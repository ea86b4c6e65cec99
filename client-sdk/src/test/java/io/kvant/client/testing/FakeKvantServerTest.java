package io.kvant.client.testing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.grpc.Status;
import io.kvant.client.Completion;
import io.kvant.client.FinishReason;
import io.kvant.client.GenerateParams;
import io.kvant.client.KvantClient;
import io.kvant.client.ModelNotFoundException;
import io.kvant.client.UnavailableException;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The test kit, used the way its users would (public API only). */
@Timeout(20)
class FakeKvantServerTest {
  @Test
  void scriptedCompletionsHonourMaxTokensAndStops() {
    try (FakeKvantServer server =
        FakeKvantServer.builder()
            .respond(prompt -> prompt.toUpperCase() + " and more words here")
            .modelVersion("v7")
            .start()) {
      KvantClient client = server.client();
      Completion all = client.generate(GenerateParams.builder().prompt("hi there").build());
      assertThat(all.text()).isEqualTo("HI THERE and more words here");
      assertThat(all.finishReason()).isEqualTo(FinishReason.STOP);
      assertThat(all.modelVersion()).isEqualTo("v7");
      assertThat(all.usage().completionTokens()).isEqualTo(6);

      Completion cut = client.generate(GenerateParams.builder().prompt("hi").maxTokens(2).build());
      assertThat(cut.text()).isEqualTo("HI and");
      assertThat(cut.finishReason()).isEqualTo(FinishReason.LENGTH);

      Completion stopped =
          client.generate(GenerateParams.builder().prompt("hi").stop("ore w").build());
      assertThat(stopped.text()).isEqualTo("HI and m");
      assertThat(stopped.finishReason()).isEqualTo(FinishReason.STOP);

      assertThat(server.requests()).hasSize(3);
      assertThat(server.requests().get(1).request().getMaxTokens()).isEqualTo(2);
    }
  }

  @Test
  void customTokensAndTokenIdPrompts() {
    try (FakeKvantServer server =
        FakeKvantServer.builder()
            .respond(prompt -> "[" + prompt + "]")
            .tokens(text -> Arrays.stream(text.split("")).toList())
            .start()) {
      Completion c =
          server
              .client()
              .generate(GenerateParams.builder().promptTokenIds(4, 2).returnTokenIds(true).build());
      assertThat(c.text()).isEqualTo("[4 2]");
      assertThat(c.tokenIds()).hasSize(5);
      assertThat(c.usage().promptTokens()).isEqualTo(2);
    }
  }

  @Test
  void injectedErrorsAndUnknownModels() {
    try (FakeKvantServer server = FakeKvantServer.builder().modelName("m1").start()) {
      KvantClient client = server.client();
      assertThatThrownBy(
              () -> client.generate(GenerateParams.builder().prompt("x").model("m2").build()))
          .isInstanceOf(ModelNotFoundException.class);

      server.failNext(Status.Code.UNAVAILABLE, 100);
      assertThatThrownBy(() -> client.generate(GenerateParams.builder().prompt("x").build()))
          .isInstanceOf(UnavailableException.class);
      server.failNext(Status.Code.UNAVAILABLE, 0);
      assertThat(client.generate(GenerateParams.builder().prompt("x").model("m1").build()).text())
          .isEqualTo("You said: x");
      assertThat(client.listModels()).extracting(m -> m.getName()).isEqualTo(List.of("m1"));
    }
  }

  @Test
  void closingTheServerClosesItsClient() {
    FakeKvantServer server = FakeKvantServer.builder().start();
    KvantClient client = server.client();
    server.close();
    assertThatThrownBy(() -> client.generate(GenerateParams.builder().prompt("x").build()))
        .isInstanceOf(UnavailableException.class);
    assertThatThrownBy(server::client).isInstanceOf(IllegalStateException.class);
  }

  @Test
  void reportsTheConfiguredCachedPromptTokensCappedAtThePrompt() {
    assertThatThrownBy(() -> FakeKvantServer.builder().cachedPromptTokens(-1))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("cachedPromptTokens");
    try (FakeKvantServer server = FakeKvantServer.builder().cachedPromptTokens(3).start()) {
      KvantClient client = server.client();
      assertThat(client.generate(GenerateParams.builder().prompt("a b c d e").build()).usage())
          .extracting(u -> u.promptTokens(), u -> u.cachedPromptTokens())
          .containsExactly(5, 3);
      assertThat(client.generate(GenerateParams.builder().prompt("a b").build()).usage())
          .extracting(u -> u.cachedPromptTokens())
          .isEqualTo(2);
    }
  }
}
