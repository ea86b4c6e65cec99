package io.kvant.server.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kvant.api.v1.GenerateRequest;
import io.kvant.api.v1.GenerateResponse;
import io.kvant.engine.sched.SchedulerStats;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.sdk.trace.data.SpanData;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The OpenAI-compatible HTTP API of a real kvant (stories260K, a ChatML template passed with
 * --chat-template) over a real socket on 127.0.0.1, with the JDK's HTTP client and a raw socket.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class OpenAiHttpTest {
  static final ObjectMapper JSON = new ObjectMapper();
  static final Path CHATML = Path.of("src/test/resources/chat/chatml.jinja");

  TestServer s;
  final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

  @BeforeAll
  void start() throws Exception {
    s = TestServer.builder().http().chatTemplate(CHATML).start();
  }

  @AfterAll
  void stop() throws Exception {
    s.close();
  }

  HttpResponse<String> post(String path, String body, String... headers) throws Exception {
    HttpRequest.Builder b =
        HttpRequest.newBuilder(URI.create(s.httpBase() + path))
            .header("content-type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(body));
    for (int i = 0; i < headers.length; i += 2) {
      b.header(headers[i], headers[i + 1]);
    }
    return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
  }

  @Test
  void completionIsWhatTheGrpcApiGeneratesForTheSamePrompt() throws Exception {
    HttpResponse<String> res =
        post(
            "/v1/completions",
            "{\"model\":\"stories\",\"prompt\":\"Once upon a time\",\"max_tokens\":12,\"temperature\":0}",
            "x-request-id",
            "http-req-1");
    assertThat(res.statusCode()).isEqualTo(200);
    assertThat(res.headers().firstValue("x-request-id")).hasValue("http-req-1");
    JsonNode body = JSON.readTree(res.body());
    GenerateResponse grpc =
        s.blocking()
            .generate(
                GenerateRequest.newBuilder().setText("Once upon a time").setMaxTokens(12).build());
    assertThat(body.path("object").asText()).isEqualTo("text_completion");
    assertThat(body.path("id").asText()).isEqualTo("cmpl-http-req-1");
    assertThat(body.path("model").asText()).isEqualTo("stories");
    assertThat(body.at("/choices/0/text").asText()).isEqualTo(grpc.getText()).isNotEmpty();
    assertThat(body.at("/choices/0/finish_reason").asText()).isEqualTo("length");
    assertThat(body.at("/usage/prompt_tokens").asInt())
        .isEqualTo(grpc.getUsage().getPromptTokens());
    assertThat(body.at("/usage/completion_tokens").asInt()).isEqualTo(12);
    assertThat(body.at("/usage/total_tokens").asInt())
        .isEqualTo(grpc.getUsage().getPromptTokens() + 12);
  }

  @Test
  void chatStreamsServerSentEventsThatAddUpToTheWholeAnswer() throws Exception {
    String request =
        "{\"model\":\"stories\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
            + "{\"role\":\"user\",\"content\":\"Who found the cat?\"}],"
            + "\"max_tokens\":20,\"temperature\":0,\"seed\":7";
    JsonNode whole = JSON.readTree(post("/v1/chat/completions", request + "}").body());
    assertThat(whole.path("object").asText()).isEqualTo("chat.completion");
    assertThat(whole.at("/choices/0/message/role").asText()).isEqualTo("assistant");
    String answer = whole.at("/choices/0/message/content").asText();
    assertThat(answer).isNotEmpty();

    HttpResponse<Stream<String>> res =
        http.send(
            HttpRequest.newBuilder(URI.create(s.httpBase() + "/v1/chat/completions"))
                .POST(
                    HttpRequest.BodyPublishers.ofString(
                        request + ",\"stream\":true,\"stream_options\":{\"include_usage\":true}}"))
                .build(),
            HttpResponse.BodyHandlers.ofLines());
    assertThat(res.statusCode()).isEqualTo(200);
    assertThat(res.headers().firstValue("content-type"))
        .hasValueSatisfying(v -> assertThat(v).startsWith("text/event-stream"));
    List<String> events = new ArrayList<>();
    res.body().filter(l -> l.startsWith("data: ")).forEach(l -> events.add(l.substring(6)));
    assertThat(events.getLast()).isEqualTo("[DONE]");
    List<JsonNode> chunks = new ArrayList<>();
    for (String e : events.subList(0, events.size() - 1)) {
      chunks.add(JSON.readTree(e));
    }
    assertThat(chunks.getFirst().at("/choices/0/delta/role").asText()).isEqualTo("assistant");
    StringBuilder streamed = new StringBuilder();
    chunks.forEach(c -> streamed.append(c.at("/choices/0/delta/content").asText("")));
    assertThat(streamed.toString()).isEqualTo(answer);
    JsonNode usage = chunks.getLast();
    assertThat(usage.path("choices")).isEmpty();
    assertThat(usage.at("/usage/completion_tokens").asInt())
        .isEqualTo(whole.at("/usage/completion_tokens").asInt());
    assertThat(chunks.get(chunks.size() - 2).at("/choices/0/finish_reason").asText())
        .isEqualTo(whole.at("/choices/0/finish_reason").asText());
    for (JsonNode c : chunks) {
      assertThat(c.path("object").asText()).isEqualTo("chat.completion.chunk");
    }
  }

  @Test
  void invalidRequestsGetOpenAisErrorShapeNamingTheParameter() throws Exception {
    String[][] cases = {
      {"{\"model\":\"stories\",\"prompt\":\"x\",\"top_p\":1.5}", "top_p"},
      {"{\"model\":\"stories\",\"prompt\":\"x\",\"temperature\":\"hot\"}", "temperature"},
      {"{\"model\":\"stories\",\"prompt\":\"x\",\"n\":2}", "n"},
      {"{\"model\":\"stories\",\"prompt\":\"x\",\"logit_bias\":{\"50\":1}}", "logit_bias"},
      {"{\"model\":\"stories\",\"prompt\":\"x\",\"max_tokens\":0}", "max_tokens"},
      {"{\"model\":\"stories\",\"prompt\":\"x\",\"logprobs\":9}", "logprobs"},
      {"{\"model\":\"stories\",\"prompt\":\"x\",\"stop\":[1]}", "stop"},
      {"{\"model\":\"stories\",\"prompt\":\"\"}", "prompt"},
      {"{\"model\":\"stories\"}", "prompt"},
      {"{\"prompt\":\"x\"}", "model"},
      {
        "{\"model\":\"stories\",\"prompt\":\"x\",\"stream_options\":{\"include_usage\":true}}",
        "stream_options"
      },
    };
    for (String[] c : cases) {
      HttpResponse<String> res = post("/v1/completions", c[0]);
      assertThat(res.statusCode()).as(c[0]).isEqualTo(400);
      JsonNode err = JSON.readTree(res.body()).path("error");
      assertThat(err.path("type").asText()).as(c[0]).isEqualTo("invalid_request_error");
      assertThat(err.path("param").asText()).as(c[0]).isEqualTo(c[1]);
      assertThat(err.path("message").asText()).as(c[0]).startsWith(c[1] + ":");
      assertThat(err.has("code")).isTrue();
    }
    String[][] chatCases = {
      {"{\"model\":\"stories\",\"messages\":[]}", "messages"},
      {
        "{\"model\":\"stories\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
            + "\"tools\":[{\"type\":\"function\"}]}",
        "tools"
      },
      {"{\"model\":\"stories\",\"messages\":[{\"content\":\"x\"}]}", "messages[0].role"},
      {
        "{\"model\":\"stories\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
            + "\"top_logprobs\":3}",
        "top_logprobs"
      },
    };
    for (String[] c : chatCases) {
      HttpResponse<String> res = post("/v1/chat/completions", c[0]);
      assertThat(res.statusCode()).as(c[0]).isEqualTo(400);
      assertThat(JSON.readTree(res.body()).at("/error/param").asText()).as(c[0]).isEqualTo(c[1]);
    }
    HttpResponse<String> bad = post("/v1/completions", "{not json");
    assertThat(bad.statusCode()).isEqualTo(400);
    assertThat(JSON.readTree(bad.body()).at("/error/param").isNull()).isTrue();
    HttpResponse<String> unknown =
        post("/v1/completions", "{\"model\":\"gpt-4\",\"prompt\":\"x\"}");
    assertThat(unknown.statusCode()).isEqualTo(404);
    assertThat(JSON.readTree(unknown.body()).at("/error/code").asText())
        .isEqualTo("model_not_found");
  }

  @Test
  void modelsListsTheServedModel() throws Exception {
    HttpResponse<String> res =
        http.send(
            HttpRequest.newBuilder(URI.create(s.httpBase() + "/v1/models")).build(),
            HttpResponse.BodyHandlers.ofString());
    assertThat(res.statusCode()).isEqualTo(200);
    JsonNode body = JSON.readTree(res.body());
    assertThat(body.path("object").asText()).isEqualTo("list");
    assertThat(body.at("/data/0/id").asText()).isEqualTo("stories");
    assertThat(body.at("/data/0/object").asText()).isEqualTo("model");
  }

  @Test
  void logprobsCarryTokenStrings() throws Exception {
    JsonNode body =
        JSON.readTree(
            post(
                    "/v1/chat/completions",
                    "{\"model\":\"stories\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}],"
                        + "\"max_tokens\":4,\"temperature\":0,\"logprobs\":true,"
                        + "\"top_logprobs\":2}")
                .body());
    JsonNode content = body.at("/choices/0/logprobs/content");
    assertThat(content).hasSize(body.at("/usage/completion_tokens").asInt());
    StringBuilder joined = new StringBuilder();
    content.forEach(t -> joined.append(t.path("token").asText()));
    assertThat(joined.toString().strip())
        .isEqualTo(body.at("/choices/0/message/content").asText().strip());
    assertThat(content.get(0).path("top_logprobs")).hasSize(2);
    assertThat(content.get(0).path("logprob").asDouble()).isLessThanOrEqualTo(0);
  }

  @Test
  void aCallersTraceContinuesIntoKvantsSpan() throws Exception {
    String traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    String parentSpan = "00f067aa0ba902b7";
    HttpResponse<String> res =
        post(
            "/v1/completions",
            "{\"model\":\"stories\",\"prompt\":\"Lily was\",\"max_tokens\":3}",
            "traceparent",
            "00-" + traceId + "-" + parentSpan + "-01",
            "x-request-id",
            "traced-http");
    assertThat(res.statusCode()).isEqualTo(200);
    SpanData span = span("traced-http");
    assertThat(span.getTraceId()).isEqualTo(traceId);
    assertThat(span.getParentSpanId()).isEqualTo(parentSpan);
  }

  @Test
  void aClientThatGoesAwayCancelsItsRequestAndFreesItsBlocks() throws Exception {
    try (Socket socket = new Socket("127.0.0.1", s.server.httpPort())) {
      String body =
          "{\"model\":\"stories\",\"prompt\":\"Tom had a\",\"max_tokens\":100000,"
              + "\"stream\":true,\"temperature\":1,\"seed\":3}";
      OutputStream out = socket.getOutputStream();
      out.write(
          ("POST /v1/completions HTTP/1.1\r\nhost: 127.0.0.1\r\nx-request-id: gone-away\r\n"
                  + "content-type: application/json\r\ncontent-length: "
                  + body.getBytes(StandardCharsets.UTF_8).length
                  + "\r\n\r\n"
                  + body)
              .getBytes(StandardCharsets.UTF_8));
      out.flush();
      BufferedReader in =
          new BufferedReader(
              new InputStreamReader(socket.getInputStream(), StandardCharsets.UTF_8));
      assertThat(in.readLine()).isEqualTo("HTTP/1.1 200 OK");
      String line;
      while ((line = in.readLine()) != null && !line.startsWith("data: ")) {}
      assertThat(line).startsWith("data: ");
    }
    SpanData span = span("gone-away");
    assertThat(span.getAttributes().get(AttributeKey.stringKey("gen_ai.response.finish_reasons")))
        .isEqualTo("cancelled");
    SchedulerStats stats = s.server.engineLoop().stats();
    for (int i = 0; i < 100 && (stats.running() > 0 || stats.kvUsage() > 0); i++) {
      Thread.sleep(20);
      stats = s.server.engineLoop().stats();
    }
    assertThat(stats.running()).isZero();
    assertThat(stats.kvUsage()).isZero();
  }

  /** The finished kvant.generate span of a request id, waiting up to 5 s for it to end. */
  SpanData span(String requestId) throws InterruptedException {
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
