package io.kvant.server.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.kvant.api.v1.GenerateRequest;
import io.kvant.api.v1.GenerationGrpc;
import io.kvant.api.v1.SamplingParams;
import io.kvant.api.v1.TokenIds;
import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.UnaryOperator;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** One bad value per field: each gets INVALID_ARGUMENT naming the field; nothing leaks. */
class BadInputTest {
  static TestServer server;

  @BeforeAll
  static void start() throws Exception {
    server = TestServer.builder().start();
  }

  @AfterAll
  static void stop() throws Exception {
    server.close();
  }

  static GenerateRequest.Builder ok() {
    return GenerateRequest.newBuilder().setText("Once upon a time").setMaxTokens(4);
  }

  static Arguments bad(String field, UnaryOperator<GenerateRequest.Builder> change) {
    return Arguments.of(field, change.apply(ok()).build());
  }

  static SamplingParams.Builder s() {
    return SamplingParams.newBuilder();
  }

  static Stream<Arguments> badRequests() {
    return Stream.of(
        bad("prompt:", b -> b.clearPrompt()),
        bad("prompt.text:", b -> b.setText("")),
        bad("prompt.text:", b -> b.setText("x".repeat(5000))),
        bad("prompt.token_ids:", b -> b.setTokenIds(TokenIds.newBuilder())),
        bad("prompt.token_ids:", b -> b.setTokenIds(TokenIds.newBuilder().addIds(1).addIds(512))),
        bad("prompt.token_ids:", b -> b.setTokenIds(TokenIds.newBuilder().addIds(-3))),
        bad(
            "prompt.token_ids:",
            b ->
                b.setTokenIds(
                    TokenIds.newBuilder()
                        .addAllIds(IntStream.range(0, 2048).map(i -> 5).boxed().toList()))),
        bad("max_tokens:", b -> b.setMaxTokens(-1)),
        bad("max_tokens:", b -> b.setMaxTokens(2_000_000)),
        bad("sampling.temperature:", b -> b.setSampling(s().setTemperature(-0.5f))),
        bad("sampling.temperature:", b -> b.setSampling(s().setTemperature(101f))),
        bad("sampling.top_k:", b -> b.setSampling(s().setTopK(-1))),
        bad("sampling.top_k:", b -> b.setSampling(s().setTopK(100_000))),
        bad("sampling.top_p:", b -> b.setSampling(s().setTopP(1.5f))),
        bad("sampling.min_p:", b -> b.setSampling(s().setMinP(-0.1f))),
        bad("sampling.repetition_penalty:", b -> b.setSampling(s().setRepetitionPenalty(11f))),
        bad("sampling.presence_penalty:", b -> b.setSampling(s().setPresencePenalty(3f))),
        bad("sampling.frequency_penalty:", b -> b.setSampling(s().setFrequencyPenalty(-2.5f))),
        bad("sampling.temperature:", b -> b.setSampling(s().setTemperature(Float.NaN))),
        bad("stop:", b -> b.addAllStop(IntStream.range(0, 17).mapToObj(i -> "s" + i).toList())),
        bad("stop:", b -> b.addStop("")),
        bad("stop:", b -> b.addStop("y".repeat(300))),
        bad("logprobs:", b -> b.setLogprobs(21)),
        bad("logprobs:", b -> b.setLogprobs(-1)),
        bad("priority:", b -> b.setPriority(5000)),
        bad("request_id:", b -> b.setRequestId("has space")),
        bad("request_id:", b -> b.setRequestId("r".repeat(200))));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("badRequests")
  void badFieldIsInvalidArgumentNamingTheField(String field, GenerateRequest request) {
    for (boolean stream : new boolean[] {false, true}) {
      StatusRuntimeException e =
          catchThrowableOfType(
              StatusRuntimeException.class,
              () -> {
                if (stream) {
                  server.blocking().generateStream(request).forEachRemaining(c -> {});
                } else {
                  server.blocking().generate(request);
                }
              });
      assertThat(e).as("stream=%s", stream).isNotNull();
      assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
      assertThat(e.getStatus().getDescription()).startsWith(field).doesNotContain("Exception");
    }
    server.server.engineLoop().checkInvariants();
  }

  @Test
  void unknownModelIsNotFound() {
    StatusRuntimeException e =
        catchThrowableOfType(
            StatusRuntimeException.class,
            () -> server.blocking().generate(ok().setModel("gpt-17").build()));
    assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.NOT_FOUND);
    assertThat(e.getStatus().getDescription()).contains("gpt-17");
  }

  @Test
  void invalidUtf8InThePromptIsInvalidArgumentNamingTheField() throws Exception {
    // The Java builders refuse to create such a message, so the bytes are written by hand:
    // field 2 (text), wire type 2, length 3, then 'a', 0xFF, 'b'.
    byte[] raw = {0x12, 0x03, 'a', (byte) 0xFF, 'b', 0x20, 0x04};
    MethodDescriptor<byte[], byte[]> method =
        GenerationGrpc.getGenerateMethod().toBuilder(new RawMarshaller(), new RawMarshaller())
            .build();
    ClientCall<byte[], byte[]> call = server.channel.newCall(method, CallOptions.DEFAULT);
    CompletableFuture<Status> done = new CompletableFuture<>();
    call.start(
        new ClientCall.Listener<>() {
          @Override
          public void onClose(Status status, Metadata trailers) {
            done.complete(status);
          }
        },
        new Metadata());
    call.request(1);
    call.sendMessage(raw);
    call.halfClose();
    Status status = done.get(10, TimeUnit.SECONDS);
    assertThat(status.getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(status.getDescription()).startsWith("prompt.text:").contains("UTF-8");
  }

  /** Sends hand-written bytes (the Java builders refuse invalid UTF-8) and returns the status. */
  static Status send(MethodDescriptor<?, ?> typed, byte[] raw) throws Exception {
    MethodDescriptor<byte[], byte[]> method =
        typed.toBuilder(new RawMarshaller(), new RawMarshaller()).build();
    CallOptions options = CallOptions.DEFAULT.withDeadlineAfter(30, TimeUnit.SECONDS);
    if (method.getServiceName().equals(io.kvant.api.v1.ModelAdminGrpc.SERVICE_NAME)) {
      options = options.withCallCredentials(TestServer.bearer(TestServer.ADMIN_TOKEN));
    }
    ClientCall<byte[], byte[]> call = server.channel.newCall(method, options);
    CompletableFuture<Status> done = new CompletableFuture<>();
    call.start(
        new ClientCall.Listener<>() {
          @Override
          public void onClose(Status status, Metadata trailers) {
            done.complete(status);
          }
        },
        new Metadata());
    call.request(1);
    call.sendMessage(raw);
    call.halfClose();
    return done.get(30, TimeUnit.SECONDS);
  }

  /** A length-delimited field {@code field} holding 'a', 0xFF, 'b' (not UTF-8). */
  static byte[] badString(int field) {
    return new byte[] {(byte) (field << 3 | 2), 0x03, 'a', (byte) 0xFF, 'b'};
  }

  static Stream<Arguments> badStrings() {
    byte[] prompt = {0x12, 0x02, 'h', 'i'};
    return Stream.of(
        Arguments.of(GenerationGrpc.getGenerateMethod(), concat(badString(1), prompt), "model:"),
        Arguments.of(
            GenerationGrpc.getGenerateStreamMethod(), concat(badString(1), prompt), "model:"),
        Arguments.of(
            GenerationGrpc.getGenerateMethod(), concat(prompt, badString(10)), "request_id:"),
        Arguments.of(
            GenerationGrpc.getGenerateStreamMethod(), concat(prompt, badString(10)), "request_id:"),
        Arguments.of(GenerationGrpc.getGenerateMethod(), concat(prompt, badString(6)), "stop:"),
        Arguments.of(GenerationGrpc.getTokenizeMethod(), badString(1), "model:"),
        Arguments.of(GenerationGrpc.getTokenizeMethod(), badString(2), "text:"),
        Arguments.of(
            io.kvant.api.v1.ModelAdminGrpc.getGetModelStatusMethod(), badString(1), "model:"),
        Arguments.of(io.kvant.api.v1.ModelAdminGrpc.getSwapMethod(), badString(1), "model:"),
        Arguments.of(
            io.kvant.api.v1.ModelAdminGrpc.getSwapMethod(), badString(2), "target.version:"),
        Arguments.of(io.kvant.api.v1.ModelAdminGrpc.getSwapMethod(), badString(3), "target.path:"),
        Arguments.of(io.kvant.api.v1.ModelAdminGrpc.getRollbackMethod(), badString(1), "model:"),
        Arguments.of(io.kvant.api.v1.ModelAdminGrpc.getWatchEventsMethod(), badString(1), "model:"),
        // Not a message at all: a length that runs past the end.
        Arguments.of(GenerationGrpc.getGenerateMethod(), new byte[] {0x12, 0x09, 'a'}, "request:"),
        Arguments.of(
            io.kvant.api.v1.ModelAdminGrpc.getSwapMethod(),
            new byte[] {0x12, 0x09, 'a'},
            "request:"));
  }

  static byte[] concat(byte[] a, byte[] b) {
    byte[] out = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }

  /**
   * Issue 17, item 4: invalid UTF-8 in any string field, and bytes that are not a message, get
   * INVALID_ARGUMENT naming the field (before, {@code model} and {@code request_id} got UNKNOWN and
   * a stack trace in the log).
   */
  @ParameterizedTest(name = "{0} {2}")
  @MethodSource("badStrings")
  void invalidUtf8InAnyStringFieldIsInvalidArgumentNamingIt(
      MethodDescriptor<?, ?> method, byte[] raw, String field) throws Exception {
    Status status = send(method, raw);
    assertThat(status.getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(status.getDescription()).startsWith(field);
    assertThat(status.getDescription()).doesNotContain("Exception");
  }

  static final class RawMarshaller implements MethodDescriptor.Marshaller<byte[]> {
    @Override
    public InputStream stream(byte[] value) {
      return new ByteArrayInputStream(value);
    }

    @Override
    public byte[] parse(InputStream stream) {
      try {
        return stream.readAllBytes();
      } catch (java.io.IOException e) {
        throw new IllegalStateException(e);
      }
    }
  }
}
