package io.kvant.server.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.kvant.api.v1.GenerateRequest;
import io.kvant.api.v1.GenerationGrpc;
import io.kvant.api.v1.GetModelStatusRequest;
import io.kvant.api.v1.ListModelsRequest;
import io.kvant.api.v1.ModelAdminGrpc;
import io.kvant.api.v1.RollbackRequest;
import io.kvant.api.v1.SamplingParams;
import io.kvant.api.v1.SwapRequest;
import io.kvant.api.v1.TokenIds;
import io.kvant.api.v1.TokenizeRequest;
import io.kvant.api.v1.WatchEventsRequest;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Issue 17, items 3 and 4: random and mutated requests to every gRPC method over a real socket.
 * Every answer must be OK or a status the API documents for that method (never UNKNOWN or
 * INTERNAL), and the server must still serve afterwards.
 *
 * <p>Each {@link Surface} is one API with its documented outcomes: {@link GrpcSurface}, and the
 * OpenAI-compatible HTTP API ({@link HttpSurface}, issue 19), whose refusals must also have
 * OpenAI's error shape. Bounded in cases ({@value #MAX_CASES}) and time ({@value #MAX_SECONDS} s,
 * {@value #MAX_HTTP_SECONDS} s for HTTP); the seed is printed.
 */
class ApiFuzzTest {
  static final int MAX_CASES = 3000;
  static final int MAX_SECONDS = 25;
  static final int MAX_HTTP_SECONDS = 15;
  static final int IN_FLIGHT = 8;

  /** What one API surface accepts and what it may answer. */
  interface Surface {
    /** Valid requests, by operation name, that mutations start from. */
    Map<String, List<byte[]>> seeds();

    /** Sends {@code body} to {@code operation}; completes with the outcome's name. */
    CompletableFuture<String> send(String operation, byte[] body);

    /** Whether {@code outcome} is documented for {@code operation}. */
    boolean documented(String operation, String outcome);

    /** One mutation of a seed request (byte-level unless the surface knows better). */
    default byte[] mutate(byte[] seed, Random r) {
      return ApiFuzzTest.mutate(seed, r);
    }
  }

  /** The gRPC API, over a plaintext channel to 127.0.0.1. */
  static final class GrpcSurface implements Surface {
    // The statuses generation.proto and admin.proto document (DEADLINE_EXCEEDED: the test's own
    // deadlines; RESOURCE_EXHAUSTED: a full queue, or a message over the size limit).
    static final Set<Status.Code> GENERATION =
        EnumSet.of(
            Status.Code.OK,
            Status.Code.INVALID_ARGUMENT,
            Status.Code.NOT_FOUND,
            Status.Code.RESOURCE_EXHAUSTED,
            Status.Code.DEADLINE_EXCEEDED);
    static final Set<Status.Code> ADMIN =
        EnumSet.of(
            Status.Code.OK,
            Status.Code.INVALID_ARGUMENT,
            Status.Code.NOT_FOUND,
            Status.Code.FAILED_PRECONDITION,
            Status.Code.DEADLINE_EXCEEDED);

    private final TestServer server;
    private final Map<String, MethodDescriptor<byte[], byte[]>> methods = new TreeMap<>();

    GrpcSurface(TestServer server) {
      this.server = server;
      add(GenerationGrpc.getGenerateMethod());
      add(GenerationGrpc.getGenerateStreamMethod());
      add(GenerationGrpc.getTokenizeMethod());
      add(GenerationGrpc.getListModelsMethod());
      add(ModelAdminGrpc.getGetModelStatusMethod());
      add(ModelAdminGrpc.getSwapMethod());
      add(ModelAdminGrpc.getRollbackMethod());
      add(ModelAdminGrpc.getWatchEventsMethod());
      add(HealthGrpc.getCheckMethod());
    }

    private void add(MethodDescriptor<?, ?> m) {
      methods.put(
          m.getFullMethodName(),
          m.toBuilder(new BadInputTest.RawMarshaller(), new BadInputTest.RawMarshaller()).build());
    }

    @Override
    public Map<String, List<byte[]>> seeds() {
      Map<String, List<byte[]>> s = new TreeMap<>();
      List<byte[]> gen = new ArrayList<>();
      gen.add(
          GenerateRequest.newBuilder()
              .setText("Once upon a time")
              .setMaxTokens(3)
              .build()
              .toByteArray());
      gen.add(
          GenerateRequest.newBuilder()
              .setTokenIds(TokenIds.newBuilder().addIds(1).addIds(400).addIds(7))
              .setMaxTokens(2)
              .setSampling(
                  SamplingParams.newBuilder().setTemperature(0.8f).setTopK(5).setTopP(0.9f))
              .addStop("\n")
              .setLogprobs(2)
              .setReturnTokenIds(true)
              .setPriority(-3)
              .setRequestId("fuzz-1")
              .setModel("stories")
              .build()
              .toByteArray());
      s.put(GenerationGrpc.getGenerateMethod().getFullMethodName(), gen);
      s.put(GenerationGrpc.getGenerateStreamMethod().getFullMethodName(), gen);
      s.put(
          GenerationGrpc.getTokenizeMethod().getFullMethodName(),
          List.of(
              TokenizeRequest.newBuilder()
                  .setText("The dog ran")
                  .setAddBos(true)
                  .build()
                  .toByteArray()));
      s.put(
          GenerationGrpc.getListModelsMethod().getFullMethodName(),
          List.of(ListModelsRequest.getDefaultInstance().toByteArray()));
      s.put(
          ModelAdminGrpc.getGetModelStatusMethod().getFullMethodName(),
          List.of(GetModelStatusRequest.newBuilder().setModel("stories").build().toByteArray()));
      s.put(
          ModelAdminGrpc.getSwapMethod().getFullMethodName(),
          List.of(
              SwapRequest.newBuilder().setVersion("v1").build().toByteArray(),
              SwapRequest.newBuilder().setPath("no/such/model.gguf").build().toByteArray()));
      s.put(
          ModelAdminGrpc.getRollbackMethod().getFullMethodName(),
          List.of(RollbackRequest.newBuilder().setModel("stories").build().toByteArray()));
      s.put(
          ModelAdminGrpc.getWatchEventsMethod().getFullMethodName(),
          List.of(WatchEventsRequest.newBuilder().setModel("stories").build().toByteArray()));
      s.put(
          HealthGrpc.getCheckMethod().getFullMethodName(),
          List.of(HealthCheckRequest.newBuilder().setService("stories").build().toByteArray()));
      return s;
    }

    @Override
    public CompletableFuture<String> send(String operation, byte[] body) {
      MethodDescriptor<byte[], byte[]> m = methods.get(operation);
      boolean admin = m.getServiceName().equals(ModelAdminGrpc.SERVICE_NAME);
      // WatchEvents never ends by itself: a short deadline ends it (documented as such).
      long deadlineMs = operation.endsWith("WatchEvents") ? 200 : 5_000;
      CallOptions options =
          CallOptions.DEFAULT.withDeadlineAfter(deadlineMs, TimeUnit.MILLISECONDS);
      if (admin) {
        options = options.withCallCredentials(TestServer.bearer(TestServer.ADMIN_TOKEN));
      }
      ClientCall<byte[], byte[]> call = server.channel.newCall(m, options);
      CompletableFuture<String> done = new CompletableFuture<>();
      call.start(
          new ClientCall.Listener<>() {
            @Override
            public void onMessage(byte[] message) {
              call.request(1);
            }

            @Override
            public void onClose(Status status, Metadata trailers) {
              done.complete(status.getCode().name());
            }
          },
          new Metadata());
      call.request(1);
      call.sendMessage(body);
      call.halfClose();
      return done;
    }

    @Override
    public boolean documented(String operation, String outcome) {
      Status.Code code = Status.Code.valueOf(outcome);
      if (operation.startsWith("grpc.health")) {
        return code == Status.Code.OK
            || code == Status.Code.NOT_FOUND
            || code == Status.Code.INVALID_ARGUMENT;
      }
      return (operation.startsWith("kvant.v1.ModelAdmin") ? ADMIN : GENERATION).contains(code);
    }
  }

  /**
   * The OpenAI-compatible HTTP API over HTTP/1.1 to 127.0.0.1. An outcome is the status code, and
   * {@code bad-error-shape} for a refusal whose body is not OpenAI's {@code {"error": {message,
   * type, param, code}}}, or {@code sse-unterminated} for an event stream that does not end with
   * {@code [DONE]}.
   */
  static final class HttpSurface implements Surface {
    static final String COMPLETIONS = "POST /v1/completions";
    static final String CHAT = "POST /v1/chat/completions";
    static final String MODELS = "GET /v1/models";
    // 400 bad field or body, 404 unknown model, 413 body too large, 429 queue full.
    static final Set<String> DOCUMENTED = Set.of("200", "400", "404", "413", "429");
    static final String[] FIELDS = {
      "model",
      "prompt",
      "messages",
      "max_tokens",
      "max_completion_tokens",
      "temperature",
      "top_p",
      "stop",
      "seed",
      "n",
      "logprobs",
      "top_logprobs",
      "user",
      "stream",
      "stream_options",
      "presence_penalty",
      "frequency_penalty",
      "response_format",
      "tools",
      "logit_bias",
      "echo",
      "best_of",
      "suffix"
    };
    static final com.fasterxml.jackson.databind.ObjectMapper JSON =
        new com.fasterxml.jackson.databind.ObjectMapper();

    private final TestServer server;
    private final java.net.http.HttpClient http =
        java.net.http.HttpClient.newBuilder()
            .version(java.net.http.HttpClient.Version.HTTP_1_1)
            .connectTimeout(java.time.Duration.ofSeconds(5))
            .build();

    HttpSurface(TestServer server) {
      this.server = server;
    }

    @Override
    public Map<String, List<byte[]>> seeds() {
      Map<String, List<byte[]>> s = new TreeMap<>();
      s.put(
          COMPLETIONS,
          List.of(
              utf8("{\"model\":\"stories\",\"prompt\":\"Once upon a time\",\"max_tokens\":3}"),
              utf8(
                  "{\"model\":\"stories\",\"prompt\":[\"Lily\"],\"max_tokens\":2,"
                      + "\"temperature\":0.7,\"top_p\":0.9,\"stop\":[\"\\n\"],\"seed\":5,"
                      + "\"logprobs\":2,\"user\":\"u\",\"stream\":true,"
                      + "\"stream_options\":{\"include_usage\":true}}")));
      s.put(
          CHAT,
          List.of(
              utf8(
                  "{\"model\":\"stories\",\"messages\":[{\"role\":\"system\",\"content\":"
                      + "\"Be brief.\"},{\"role\":\"user\",\"content\":\"Hi\"}],"
                      + "\"max_tokens\":3,\"temperature\":0}"),
              utf8(
                  "{\"model\":\"stories\",\"messages\":[{\"role\":\"user\",\"content\":"
                      + "[{\"type\":\"text\",\"text\":\"Hi\"}]}],\"max_completion_tokens\":2,"
                      + "\"logprobs\":true,\"top_logprobs\":1,\"stream\":true}")));
      s.put(MODELS, List.of(new byte[0]));
      return s;
    }

    static byte[] utf8(String s) {
      return s.getBytes(java.nio.charset.StandardCharsets.UTF_8);
    }

    /** Half the time a JSON-aware mutation (a field set to a value of any type, dropped, added). */
    @Override
    public byte[] mutate(byte[] seed, Random r) {
      if (seed.length == 0 || r.nextBoolean()) {
        return ApiFuzzTest.mutate(seed, r);
      }
      com.fasterxml.jackson.databind.JsonNode tree;
      try {
        tree = JSON.readTree(seed);
      } catch (java.io.IOException e) {
        tree = null; // already mutated into something that is not JSON
      }
      if (!(tree instanceof com.fasterxml.jackson.databind.node.ObjectNode body)) {
        return ApiFuzzTest.mutate(seed, r);
      }
      try {
        switch (r.nextInt(4)) {
          case 0 -> body.remove(FIELDS[r.nextInt(FIELDS.length)]);
          case 1 -> body.set("x_" + r.nextInt(100), randomValue(r, 2));
          case 2 -> {
            var messages = body.path("messages");
            // The first message may itself be a mutated value (a number, an array): set a field
            // only on an object.
            if (messages.isArray()
                && !messages.isEmpty()
                && messages.get(0) instanceof com.fasterxml.jackson.databind.node.ObjectNode m) {
              m.set(r.nextBoolean() ? "role" : "content", randomValue(r, 2));
            } else {
              body.set(FIELDS[r.nextInt(FIELDS.length)], randomValue(r, 2));
            }
          }
          default -> body.set(FIELDS[r.nextInt(FIELDS.length)], randomValue(r, 2));
        }
        return JSON.writeValueAsBytes(r.nextInt(20) == 0 ? randomValue(r, 1) : body);
      } catch (java.io.IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
    }

    static com.fasterxml.jackson.databind.JsonNode randomValue(Random r, int depth) {
      var f = JSON.getNodeFactory();
      long[] edges = {0, 1, -1, 2, 255, 4096, Integer.MAX_VALUE, Integer.MIN_VALUE, Long.MAX_VALUE};
      return switch (r.nextInt(depth > 0 ? 9 : 7)) {
        case 0 -> f.nullNode();
        case 1 -> f.booleanNode(r.nextBoolean());
        case 2 -> f.numberNode(edges[r.nextInt(edges.length)]);
        case 3 -> f.numberNode(r.nextGaussian() * Math.pow(10, r.nextInt(12) - 4));
        case 4 -> f.numberNode(new java.math.BigInteger(80, r));
        case 5 -> f.textNode("stories");
        case 6 -> {
          StringBuilder b = new StringBuilder();
          for (int i = 0, n = r.nextInt(12); i < n; i++) {
            b.appendCodePoint(r.nextInt(4) == 0 ? r.nextInt(0x30000) : 32 + r.nextInt(95));
          }
          yield f.textNode(b.toString());
        }
        case 7 -> {
          var a = f.arrayNode();
          for (int i = 0, n = r.nextInt(4); i < n; i++) {
            a.add(randomValue(r, depth - 1));
          }
          yield a;
        }
        default -> {
          var o = f.objectNode();
          for (int i = 0, n = r.nextInt(3); i < n; i++) {
            o.set(r.nextBoolean() ? "include_usage" : "type", randomValue(r, depth - 1));
          }
          yield o;
        }
      };
    }

    @Override
    public CompletableFuture<String> send(String operation, byte[] body) {
      String[] methodAndPath = operation.split(" ");
      var request =
          java.net.http.HttpRequest.newBuilder(
                  java.net.URI.create(server.httpBase() + methodAndPath[1]))
              .timeout(java.time.Duration.ofSeconds(10))
              .header("content-type", "application/json");
      request =
          methodAndPath[0].equals("GET")
              ? request.GET()
              : request.POST(java.net.http.HttpRequest.BodyPublishers.ofByteArray(body));
      return http.sendAsync(request.build(), java.net.http.HttpResponse.BodyHandlers.ofString())
          .thenApply(HttpSurface::outcome);
    }

    static String outcome(java.net.http.HttpResponse<String> res) {
      String status = Integer.toString(res.statusCode());
      boolean sse =
          res.headers().firstValue("content-type").orElse("").startsWith("text/event-stream");
      if (sse) {
        return res.body().stripTrailing().endsWith("data: [DONE]") ? status : "sse-unterminated";
      }
      if (res.statusCode() != 200) {
        try {
          var error = JSON.readTree(res.body()).path("error");
          boolean shaped =
              error.path("message").isTextual()
                  && error.path("type").isTextual()
                  && error.has("param")
                  && error.has("code");
          return shaped ? status : "bad-error-shape";
        } catch (java.io.IOException e) {
          return "bad-error-shape";
        }
      }
      return status;
    }

    @Override
    public boolean documented(String operation, String outcome) {
      return operation.equals(MODELS) ? outcome.equals("200") : DOCUMENTED.contains(outcome);
    }
  }

  /** One mutation of {@code seed}: the kinds a byte-level fuzzer uses, or fresh random bytes. */
  static byte[] mutate(byte[] seed, Random r) {
    byte[] b = seed.clone();
    switch (r.nextInt(8)) {
      case 0 -> { // flip bits
        for (int i = 0, n = 1 + r.nextInt(4); i < n && b.length > 0; i++) {
          b[r.nextInt(b.length)] ^= (byte) (1 << r.nextInt(8));
        }
      }
      case 1 -> { // replace a byte with a boundary value
        if (b.length > 0) {
          byte[] edge = {0, (byte) 0x7f, (byte) 0x80, (byte) 0xff, (byte) 0xc0, (byte) 0xed};
          b[r.nextInt(b.length)] = edge[r.nextInt(edge.length)];
        }
      }
      case 2 -> b = java.util.Arrays.copyOf(b, r.nextInt(b.length + 1)); // truncate
      case 3 -> { // insert random bytes
        int at = r.nextInt(b.length + 1);
        byte[] ins = new byte[1 + r.nextInt(8)];
        r.nextBytes(ins);
        byte[] out = new byte[b.length + ins.length];
        System.arraycopy(b, 0, out, 0, at);
        System.arraycopy(ins, 0, out, at, ins.length);
        System.arraycopy(b, at, out, at + ins.length, b.length - at);
        b = out;
      }
      case 4 -> { // duplicate the message (repeated fields grow, scalars are overwritten)
        byte[] out = new byte[b.length * 2];
        System.arraycopy(b, 0, out, 0, b.length);
        System.arraycopy(b, 0, out, b.length, b.length);
        b = out;
      }
      case 5 -> { // append a random field with a random wire type
        int field = 1 + r.nextInt(20);
        int wire = r.nextInt(6);
        byte[] payload = new byte[r.nextInt(12)];
        r.nextBytes(payload);
        byte[] out = new byte[b.length + 2 + payload.length];
        System.arraycopy(b, 0, out, 0, b.length);
        out[b.length] = (byte) ((field << 3) | wire);
        out[b.length + 1] = (byte) payload.length;
        System.arraycopy(payload, 0, out, b.length + 2, payload.length);
        b = out;
      }
      case 6 -> { // a string field with invalid UTF-8 appended: fields 1, 2, 6, 10 are strings
        int[] fields = {1, 2, 3, 6, 10};
        byte[] bad = {'a', (byte) 0xff, (byte) 0xc3, 'b'};
        byte[] out = new byte[b.length + 2 + bad.length];
        System.arraycopy(b, 0, out, 0, b.length);
        out[b.length] = (byte) ((fields[r.nextInt(fields.length)] << 3) | 2);
        out[b.length + 1] = (byte) bad.length;
        System.arraycopy(bad, 0, out, b.length + 2, bad.length);
        b = out;
      }
      default -> { // fresh random bytes
        b = new byte[r.nextInt(64)];
        r.nextBytes(b);
      }
    }
    return b;
  }

  @Test
  void randomAndMutatedRequestsGetDocumentedStatusesAndTheServerStillServes() throws Exception {
    long seed = System.nanoTime();
    try (TestServer t = TestServer.builder().maxQueue(64).start()) {
      fuzz(new GrpcSurface(t), new Random(seed), seed, MAX_SECONDS);
      stillServes(t);
    }
  }

  @Test
  void randomAndMutatedHttpRequestsGetDocumentedStatusesInOpenAisShape() throws Exception {
    long seed = System.nanoTime();
    try (TestServer t =
        TestServer.builder().maxQueue(64).http().chatTemplate(ChatRpcTest.CHATML).start()) {
      fuzz(new HttpSurface(t), new Random(seed), seed, MAX_HTTP_SECONDS);
      stillServes(t);
      var models =
          new HttpSurface(t).send(HttpSurface.MODELS, new byte[0]).get(30, TimeUnit.SECONDS);
      assertThat(models).isEqualTo("200");
    }
  }

  static void fuzz(Surface surface, Random r, long seed, int seconds) throws Exception {
    Map<String, List<byte[]>> seeds = surface.seeds();
    List<String> operations = new ArrayList<>(seeds.keySet());
    Map<String, Integer> outcomes = new TreeMap<>();
    List<String> undocumented = java.util.Collections.synchronizedList(new ArrayList<>());
    Semaphore slots = new Semaphore(IN_FLIGHT);
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
    int cases = 0;
    while (cases < MAX_CASES && System.nanoTime() < end) {
      String op = operations.get(r.nextInt(operations.size()));
      List<byte[]> s = seeds.get(op);
      byte[] body = surface.mutate(s.get(r.nextInt(s.size())), r);
      if (r.nextInt(4) == 0) {
        body = surface.mutate(body, r); // sometimes two mutations
      }
      byte[] sent = body;
      slots.acquire();
      cases++;
      surface
          .send(op, body)
          .whenComplete(
              (outcome, error) -> {
                String o = error != null ? "ERROR " + error : outcome;
                synchronized (outcomes) {
                  String name = op.contains(" ") ? op : op.replaceAll(".*/", "");
                  outcomes.merge(name + " " + o, 1, Integer::sum);
                }
                if (error != null || !surface.documented(op, o)) {
                  undocumented.add(
                      op + " " + o + " for " + java.util.HexFormat.of().formatHex(sent));
                }
                slots.release();
              });
    }
    assertThat(slots.tryAcquire(IN_FLIGHT, 60, TimeUnit.SECONDS)).isTrue();
    System.out.printf("FUZZ seed=%d cases=%d outcomes=%s%n", seed, cases, outcomes);
    assertThat(undocumented).as("seed %d", seed).isEmpty();
    assertThat(cases).isGreaterThan(100);
  }

  /** A normal request and the health check still work, and the engine's books balance. */
  static void stillServes(TestServer t) {
    var ok =
        t.blocking()
            .withDeadlineAfter(30, TimeUnit.SECONDS)
            .generate(
                GenerateRequest.newBuilder().setText("Once upon a time").setMaxTokens(4).build());
    assertThat(ok.getUsage().getCompletionTokens()).isPositive();
    assertThat(
            HealthGrpc.newBlockingStub(t.channel)
                .check(HealthCheckRequest.getDefaultInstance())
                .getStatus())
        .isEqualTo(HealthCheckResponse.ServingStatus.SERVING);
    t.server.engineLoop().checkInvariants();
  }
}
