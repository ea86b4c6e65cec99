package io.kvant.server.grpc;

import io.grpc.Context;
import io.grpc.Deadline;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.kvant.api.v1.ChatRequest;
import io.kvant.api.v1.GenerateChunk;
import io.kvant.api.v1.GenerateRequest;
import io.kvant.api.v1.GenerateResponse;
import io.kvant.api.v1.GenerationGrpc;
import io.kvant.api.v1.ListModelsRequest;
import io.kvant.api.v1.ListModelsResponse;
import io.kvant.api.v1.ModelInfo;
import io.kvant.api.v1.TokenizeRequest;
import io.kvant.api.v1.TokenizeResponse;
import io.kvant.engine.model.LlamaConfig;
import io.kvant.engine.sched.EngineLoop;
import io.kvant.engine.tokenizer.Tokenizer;
import io.kvant.server.model.ModelVersion;
import io.kvant.server.model.ServedModel;
import java.lang.System.Logger;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Instant;
import java.util.concurrent.TimeUnit;

/**
 * The {@code kvant.v1.Generation} service: hands each call to the shared {@link Admission}
 * (validation, chat templates, pinning, the engine loop) with the call's request id, trace context
 * and deadline; outputs come back through a {@link ResponseSink} into a {@link StreamOutbox}
 * (streams) or an accumulator (unary calls).
 *
 * <p>Errors clients can act on: INVALID_ARGUMENT naming the field, NOT_FOUND for an unknown model,
 * RESOURCE_EXHAUSTED when the admission queue is full, UNAVAILABLE while shutting down. Nothing
 * internal (stack traces, exception text) reaches a client; it goes to the log with the request id.
 */
public final class GenerationService extends GenerationGrpc.GenerationImplBase {
  private static final Logger LOG = System.getLogger("io.kvant.server.grpc.Generation");

  /** Chunks a stream may queue before deltas are merged (see {@link StreamOutbox}). */
  static final int OUTBOX_CAPACITY = 16;

  private final Admission admission;
  private final EngineLoop loop;
  private final Clock clock;

  public GenerationService(Admission admission, EngineLoop loop, Clock clock) {
    this.admission = admission;
    this.loop = loop;
    this.clock = clock;
  }

  @Override
  public void generateStream(GenerateRequest request, StreamObserver<GenerateChunk> observer) {
    ServerCallStreamObserver<GenerateChunk> call =
        (ServerCallStreamObserver<GenerateChunk>) observer;
    admission.generate(request, info("text_completion"), caller(call), streaming(call));
  }

  @Override
  public void generate(GenerateRequest request, StreamObserver<GenerateResponse> observer) {
    ServerCallStreamObserver<GenerateResponse> call =
        (ServerCallStreamObserver<GenerateResponse>) observer;
    admission.generate(request, info("text_completion"), caller(call), unary(call));
  }

  @Override
  public void chatStream(ChatRequest request, StreamObserver<GenerateChunk> observer) {
    ServerCallStreamObserver<GenerateChunk> call =
        (ServerCallStreamObserver<GenerateChunk>) observer;
    admission.chat(request, info("chat"), caller(call), streaming(call));
  }

  @Override
  public void chat(ChatRequest request, StreamObserver<GenerateResponse> observer) {
    ServerCallStreamObserver<GenerateResponse> call =
        (ServerCallStreamObserver<GenerateResponse>) observer;
    admission.chat(request, info("chat"), caller(call), unary(call));
  }

  private Admission.CallInfo info(String operation) {
    return new Admission.CallInfo(
        RequestIds.current(), TraceContextInterceptor.current(), deadline(), operation);
  }

  private static Admission.Caller caller(ServerCallStreamObserver<?> call) {
    return new Admission.Caller() {
      @Override
      public void refuse(Status status) {
        call.onError(status.asRuntimeException());
      }

      @Override
      public void onCancel(Runnable cancel) {
        call.setOnCancelHandler(cancel);
      }
    };
  }

  private static ResponseSink.Delivery streaming(ServerCallStreamObserver<GenerateChunk> call) {
    StreamOutbox outbox = new StreamOutbox(call, OUTBOX_CAPACITY);
    return new ResponseSink.Delivery() {
      @Override
      public void chunk(GenerateChunk chunk) {
        outbox.offer(chunk);
      }

      @Override
      public void end(GenerateChunk last, Status status) {
        // A request the shutdown cut off before any output ends with the bare UNAVAILABLE, so
        // that clients (the SDK) see nothing was delivered and retry it elsewhere.
        boolean empty = last.getText().isEmpty() && last.getTokenIdsCount() == 0;
        if (!(status.getCode() == Status.Code.UNAVAILABLE && empty)) {
          outbox.offer(last);
        }
        if (status.isOk()) {
          outbox.complete();
        } else {
          outbox.fail(status);
        }
      }
    };
  }

  private static ResponseSink.Delivery unary(ServerCallStreamObserver<GenerateResponse> call) {
    GenerateResponse.Builder response = GenerateResponse.newBuilder();
    StringBuilder text = new StringBuilder();
    return new ResponseSink.Delivery() {
      @Override
      public void chunk(GenerateChunk chunk) {
        text.append(chunk.getText());
        response.addAllTokenIds(chunk.getTokenIdsList());
        response.addAllLogprobs(chunk.getLogprobsList());
      }

      @Override
      public void end(GenerateChunk last, Status status) {
        if (call.isCancelled()) {
          return;
        }
        if (!status.isOk()) {
          call.onError(status.asRuntimeException());
          return;
        }
        call.onNext(
            response
                .setText(text.toString())
                .setFinishReason(last.getFinishReason())
                .setUsage(last.getUsage())
                .setModelVersion(last.getModelVersion())
                .setRequestId(last.getRequestId())
                .build());
        call.onCompleted();
      }
    };
  }

  private Instant deadline() {
    Deadline d = Context.current().getDeadline();
    if (d == null) {
      return null;
    }
    return clock.instant().plusNanos(Math.max(0, d.timeRemaining(TimeUnit.NANOSECONDS)));
  }

  @Override
  public void tokenize(TokenizeRequest request, StreamObserver<TokenizeResponse> observer) {
    if (!request.getModelBytes().isValidUtf8()) {
      observer.onError(
          Status.INVALID_ARGUMENT.withDescription("model: not valid UTF-8").asRuntimeException());
      return;
    }
    ServedModel model = admission.models().find(request.getModel()).orElse(null);
    if (model == null) {
      observer.onError(
          Status.NOT_FOUND
              .withDescription("model: no model named '" + request.getModel() + "' is served")
              .asRuntimeException());
      return;
    }
    ModelVersion version = model.serving();
    Tokenizer tok = version.model().tokenizer();
    int limit = admission.maxTextBytes(version, 1 << 20);
    if (request.getTextBytes().size() > limit) {
      // The same bound as a prompt's: tokenizing is paid for only on text that could be one.
      observer.onError(
          Status.INVALID_ARGUMENT
              .withDescription(
                  "text: at most "
                      + limit
                      + " bytes (what can fit the context window), got "
                      + request.getTextBytes().size())
              .asRuntimeException());
      return;
    }
    if (!request.getTextBytes().isValidUtf8()) {
      observer.onError(
          Status.INVALID_ARGUMENT.withDescription("text: not valid UTF-8").asRuntimeException());
      return;
    }
    int[] ids = tok.encode(request.getText(), request.getAddBos());
    TokenizeResponse.Builder b = TokenizeResponse.newBuilder();
    for (int id : ids) {
      b.addTokenIds(id);
      b.addPieces(new String(tok.tokenBytes(id), StandardCharsets.UTF_8));
    }
    observer.onNext(b.build());
    observer.onCompleted();
  }

  @Override
  public void listModels(ListModelsRequest request, StreamObserver<ListModelsResponse> observer) {
    ListModelsResponse.Builder b = ListModelsResponse.newBuilder();
    for (ServedModel m : admission.models().all()) {
      ModelVersion v = m.serving();
      LlamaConfig c = v.model().config();
      b.addModels(
          ModelInfo.newBuilder()
              .setName(m.name())
              .setServingVersion(v.id())
              .setArchitecture("llama")
              .setContextLength(c.contextLength())
              .setVocabSize(c.vocabSize())
              .setWeights(v.recipe())
              .setKvCacheType(KvTypes.name(loop.kvCache().config().type())));
    }
    observer.onNext(b.build());
    observer.onCompleted();
  }
}
