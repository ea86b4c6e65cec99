package io.kvant.server.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
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
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The Chat and ChatStream RPCs, trace context from gRPC metadata, and OTEL_* configuration, on
 * stories260K with a ChatML template passed as {@code --chat-template}.
 *
 * <p>Why one server for the class, started in {@code @BeforeAll}: the first kvant a test JVM starts
 * pays for loading about 5,000 classes (gRPC, Netty, the OpenTelemetry SDK, Jackson, Jinjava, the
 * Vector API) and for running the engine before the JIT has compiled it. On a starved machine that
 * cold start alone took most of the 2-minute per-method timeout; in its own lifecycle method it has
 * its own budget, and each test below does only its own requests.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ChatRpcTest {
  static final Path CHATML = Path.of("src/test/resources/chat/chatml.jinja");
  static final String RENDERED =
      "<|im_start|>system\nTell a short story.<|im_end|>\n<|im_start|>user\nWho found the cat?"
          + "<|im_end|>\n<|im_start|>assistant\n";

  TestServer s;

  @BeforeAll
  void start() throws Exception {
    s =
        TestServer.builder()
            .chatTemplate(CHATML)
            .otelEnv(Map.of("OTEL_SERVICE_NAME", "kvant-under-test"))
            .start();
  }

  @AfterAll
  void stop() throws Exception {
    s.close();
  }

  static ChatRequest question(String requestId) {
    return ChatRequest.newBuilder()
        .addMessages(ChatMessage.newBuilder().setRole("system").setContent("Tell a short story."))
        .addMessages(ChatMessage.newBuilder().setRole("user").setContent("Who found the cat?"))
        .setMaxTokens(12)
        .setRequestId(requestId)
        .build();
  }

  @Test
  void chatIsGenerationFromTheRenderedPromptWholeAndStreamed() {
    GenerateResponse chat = s.blocking().chat(question("chat-1"));
    // The same prompt, rendered and encoded here, through Generate: the same greedy answer.
    Tokenizer tok = s.server.models().find("").orElseThrow().serving().model().tokenizer();
    TokenIds.Builder ids = TokenIds.newBuilder();
    for (int id : new PromptEncoder(tok).encode(RENDERED)) {
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
  }

  @Test
  void chatContinuesTheCallersTraceAndNamesTheConfiguredService() throws Exception {
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
    s.blocking().chat(question("untraced-grpc"));
    SpanData own = span(s, "untraced-grpc");
    assertThat(own.getTraceId()).isNotEqualTo(traceId);
    assertThat(own.getParentSpanContext().isValid()).isFalse();
  }

  @Test
  void chatWithoutMessagesIsAnInvalidArgumentNamingThem() {
    assertThatThrownBy(() -> s.blocking().chat(ChatRequest.newBuilder().setMaxTokens(1).build()))
        .isInstanceOfSatisfying(
            StatusRuntimeException.class,
            e -> {
              assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
              assertThat(e.getStatus().getDescription()).startsWith("messages:");
            });
  }

  @Test
  void aModelWithoutATemplateIsAFailedPreconditionOrA400NamingTheFlag() throws Exception {
    try (TestServer plain = TestServer.builder().http().start()) {
      assertThatThrownBy(() -> plain.blocking().chat(question("no-template")))
          .isInstanceOfSatisfying(
              StatusRuntimeException.class,
              e -> {
                assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.FAILED_PRECONDITION);
                assertThat(e.getStatus().getDescription()).contains("--chat-template FILE");
              });
      HttpResponse<String> res =
          HttpClient.newHttpClient()
              .send(
                  HttpRequest.newBuilder(URI.create(plain.httpBase() + "/v1/chat/completions"))
                      .POST(
                          HttpRequest.BodyPublishers.ofString(
                              "{\"model\":\"stories\",\"messages\":[{\"role\":\"user\","
                                  + "\"content\":\"Hi\"}]}"))
                      .build(),
                  HttpResponse.BodyHandlers.ofString());
      assertThat(res.statusCode()).isEqualTo(400);
      JsonNode error = new ObjectMapper().readTree(res.body()).path("error");
      assertThat(error.path("code").asText()).isEqualTo("chat_template_missing");
      assertThat(error.path("message").asText()).contains("--chat-template FILE");
    }
  }

  /** The finished kvant.generate span of a request id, waiting up to 5 s for it to end. */
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
