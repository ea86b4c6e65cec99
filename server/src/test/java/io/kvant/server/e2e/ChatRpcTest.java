package io.kvant.server.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.MetadataUtils;
import io.kvant.api.v1.ChatMessage;
import io.kvant.api.v1.ChatRequest;
import io.kvant.api.v1.GenerateChunk;
import io.kvant.api.v1.GenerateRequest;
import io.kvant.api.v1.GenerateResponse;
import io.kvant.api.v1.TokenIds;
import io.kvant.engine.tokenizer.Tokenizer;
import io.kvant.server.chat.PromptEncoder;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.sdk.trace.data.SpanData;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The Chat and ChatStream RPCs, trace context from gRPC metadata, and OTEL_* configuration. */
class ChatRpcTest {
  static final Path CHATML = Path.of("src/test/resources/chat/chatml.jinja");

  static ChatRequest question(String requestId) {
    return ChatRequest.newBuilder()
        .addMessages(ChatMessage.newBuilder().setRole("system").setContent("Answer briefly."))
        .addMessages(ChatMessage.newBuilder().setRole("user").setContent("Who made the light?"))
        .setMaxTokens(12)
        .setRequestId(requestId)
        .build();
  }

  @Test
  void aModelWithoutATemplateIsAFailedPreconditionNamingTheFlag() throws Exception {
    try (TestServer s = TestServer.builder().start()) {
      assertThatThrownBy(() -> s.blocking().chat(question("no-template")))
          .isInstanceOfSatisfying(
              StatusRuntimeException.class,
              e -> {
                assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.FAILED_PRECONDITION);
                assertThat(e.getStatus().getDescription()).contains("--chat-template FILE");
              });
    }
  }

  @Test
  void chatIsGenerationFromTheRenderedPromptAndContinuesTheCallersTrace() throws Exception {
    try (TestServer s =
        TestServer.builder()
            .bundledModel()
            .chatTemplate(CHATML)
            .otelEnv(Map.of("OTEL_SERVICE_NAME", "kvant-under-test"))
            .start()) {
      GenerateResponse chat = s.blocking().chat(question("chat-1"));
      // The same prompt, rendered and encoded here, through Generate: the same greedy answer.
      Tokenizer tok = s.server.models().find("").orElseThrow().serving().model().tokenizer();
      String rendered =
          "<|im_start|>system\nAnswer briefly.<|im_end|>\n<|im_start|>user\nWho made the light?"
              + "<|im_end|>\n<|im_start|>assistant\n";
      TokenIds.Builder ids = TokenIds.newBuilder();
      for (int id : new PromptEncoder(tok).encode(rendered)) {
        ids.addIds(id);
      }
      GenerateResponse generated =
          s.blocking()
              .generate(GenerateRequest.newBuilder().setTokenIds(ids).setMaxTokens(12).build());
      assertThat(chat.getText()).isEqualTo(generated.getText()).isNotEmpty();
      assertThat(chat.getUsage().getPromptTokens()).isEqualTo(ids.getIdsCount());

      StringBuilder streamed = new StringBuilder();
      Iterator<GenerateChunk> it = s.blocking().chatStream(question("chat-2"));
      it.forEachRemaining(c -> streamed.append(c.getText()));
      assertThat(streamed.toString()).isEqualTo(chat.getText());

      String traceId = "0af7651916cd43dd8448eb211c80319c";
      Metadata headers = new Metadata();
      headers.put(
          Metadata.Key.of("traceparent", Metadata.ASCII_STRING_MARSHALLER),
          "00-" + traceId + "-b7ad6b7169203331-01");
      s.blocking()
          .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers))
          .chat(question("traced-grpc"));
      SpanData span = span(s, "traced-grpc");
      assertThat(span.getTraceId()).isEqualTo(traceId);
      assertThat(span.getParentSpanId()).isEqualTo("b7ad6b7169203331");
      assertThat(span.getAttributes().get(AttributeKey.stringKey("gen_ai.operation.name")))
          .isEqualTo("chat");
      assertThat(span.getResource().getAttribute(AttributeKey.stringKey("service.name")))
          .isEqualTo("kvant-under-test");
      // Without a traceparent, a request starts its own trace.
      assertThat(span(s, "chat-1").getTraceId()).isNotEqualTo(traceId);
      assertThat(span(s, "chat-1").getParentSpanContext().isValid()).isFalse();

      assertThatThrownBy(() -> s.blocking().chat(ChatRequest.newBuilder().setMaxTokens(1).build()))
          .isInstanceOfSatisfying(
              StatusRuntimeException.class,
              e -> {
                assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
                assertThat(e.getStatus().getDescription()).startsWith("messages:");
              });
    }
  }

  static SpanData span(TestServer s, String requestId) throws InterruptedException {
    for (int i = 0; i < 250; i++) {
      for (SpanData d : s.spans.getFinishedSpanItems()) {
        if (requestId.equals(d.getAttributes().get(AttributeKey.stringKey("kvant.request_id")))) {
          return d;
        }
      }
      Thread.sleep(20);
    }
    throw new AssertionError("no span for request " + requestId);
  }
}
