package io.kvant.client;

import io.kvant.api.v1.ChatRequest;
import io.kvant.api.v1.GenerateChunk;
import io.kvant.api.v1.GenerateRequest;
import io.kvant.api.v1.GenerationGrpc;
import io.kvant.api.v1.ListModelsRequest;
import io.kvant.api.v1.ListModelsResponse;
import io.kvant.api.v1.ModelInfo;
import io.kvant.api.v1.TokenizeRequest;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Flow;

/** The {@link KvantClient} over a {@link Transport}. */
final class DefaultKvantClient implements KvantClient {
  private static final int MAX_TOKENIZE_BYTES = 1 << 20;

  private final Transport transport;
  private final int streamBufferSize;

  DefaultKvantClient(Transport transport, int streamBufferSize) {
    this.transport = transport;
    this.streamBufferSize = streamBufferSize;
  }

  @Override
  public Completion generate(GenerateParams params) {
    String requestId = Transport.requestIdOr(params.requestId());
    return transport.blockingUnary(
        GenerationGrpc.getGenerateMethod(),
        params.toProto(),
        requestId,
        true,
        r -> Completion.of(r, requestId));
  }

  @Override
  public CompletableFuture<Completion> generateAsync(GenerateParams params) {
    String requestId = Transport.requestIdOr(params.requestId());
    return transport.unary(
        GenerationGrpc.getGenerateMethod(),
        params.toProto(),
        requestId,
        true,
        r -> Completion.of(r, requestId));
  }

  @Override
  public TokenStream stream(GenerateParams params) {
    GenerateRequest request = params.toProto();
    String requestId = Transport.requestIdOr(params.requestId());
    BlockingStream.Tokens stream =
        new BlockingStream.Tokens(c -> Chunk.of(c, requestId), streamBufferSize);
    stream.start(newStreamCall(request, requestId, stream));
    return stream;
  }

  @Override
  public Flow.Publisher<Chunk> publisher(GenerateParams params) {
    GenerateRequest request = params.toProto();
    return new CallPublisher<GenerateChunk, Chunk>(
        sink -> newStreamCall(request, Transport.requestIdOr(params.requestId()), sink), Chunk::of);
  }

  private StreamCall<GenerateRequest, GenerateChunk> newStreamCall(
      GenerateRequest request, String requestId, StreamCall.Sink<GenerateChunk> sink) {
    return new StreamCall<>(
        transport,
        GenerationGrpc.getGenerateStreamMethod(),
        request,
        requestId,
        transport.newDeadline(true),
        transport.retryPolicy(),
        sink);
  }

  @Override
  public Completion chat(ChatParams params) {
    String requestId = Transport.requestIdOr(params.requestId());
    return transport.blockingUnary(
        GenerationGrpc.getChatMethod(),
        params.toProto(),
        requestId,
        true,
        r -> Completion.of(r, requestId));
  }

  @Override
  public TokenStream chatStream(ChatParams params) {
    ChatRequest request = params.toProto();
    String requestId = Transport.requestIdOr(params.requestId());
    BlockingStream.Tokens stream =
        new BlockingStream.Tokens(c -> Chunk.of(c, requestId), streamBufferSize);
    stream.start(
        new StreamCall<>(
            transport,
            GenerationGrpc.getChatStreamMethod(),
            request,
            requestId,
            transport.newDeadline(true),
            transport.retryPolicy(),
            stream));
    return stream;
  }

  @Override
  public Tokenization tokenize(String text) {
    return tokenize("", text, false);
  }

  @Override
  public Tokenization tokenize(String model, String text, boolean addBos) {
    Objects.requireNonNull(model, "model");
    Objects.requireNonNull(text, "text");
    int bytes = text.getBytes(StandardCharsets.UTF_8).length;
    if (bytes > MAX_TOKENIZE_BYTES) {
      throw new IllegalArgumentException(
          "text: must be at most " + MAX_TOKENIZE_BYTES + " bytes of UTF-8, got " + bytes);
    }
    TokenizeRequest request =
        TokenizeRequest.newBuilder().setModel(model).setText(text).setAddBos(addBos).build();
    return transport.blockingUnary(
        GenerationGrpc.getTokenizeMethod(),
        request,
        Transport.requestIdOr(null),
        true,
        r -> new Tokenization(r.getTokenIdsList(), r.getPiecesList()));
  }

  @Override
  public List<ModelInfo> listModels() {
    return transport.blockingUnary(
        GenerationGrpc.getListModelsMethod(),
        ListModelsRequest.getDefaultInstance(),
        Transport.requestIdOr(null),
        true,
        ListModelsResponse::getModelsList);
  }

  @Override
  public void close() {
    transport.close();
  }
}
