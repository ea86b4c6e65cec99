package io.kvant.server.grpc;

import io.grpc.Context;
import io.grpc.Deadline;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
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
import io.kvant.engine.sched.GenerationRequest;
import io.kvant.engine.sched.RejectedException;
import io.kvant.engine.sched.RequestFinal;
import io.kvant.engine.tokenizer.Tokenizer;
import io.kvant.server.metrics.ServerMetrics;
import io.kvant.server.model.ModelRegistry;
import io.kvant.server.model.ModelVersion;
import io.kvant.server.model.ServedModel;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.StatusCode;
import java.lang.System.Logger;
import java.lang.System.Logger.Level;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Instant;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.LongSupplier;

/**
 * The {@code kvant.v1.Generation} service: validates, tokenizes, pins each request to the serving
 * model version, and hands it to the {@link EngineLoop}; outputs come back through a {@link
 * ResponseSink} into a {@link StreamOutbox} (streams) or an accumulator (unary calls).
 *
 * <p>Errors clients can act on: INVALID_ARGUMENT naming the field, NOT_FOUND for an unknown model,
 * RESOURCE_EXHAUSTED when the admission queue is full, UNAVAILABLE while shutting down. Nothing
 * internal (stack traces, exception text) reaches a client; it goes to the log with the request id.
 */
public final class GenerationService extends GenerationGrpc.GenerationImplBase {
  private static final Logger LOG = System.getLogger("io.kvant.server.grpc.Generation");

  /** Chunks a stream may queue before deltas are merged (see {@link StreamOutbox}). */
  static final int OUTBOX_CAPACITY = 16;

  private final ModelRegistry models;
  private final EngineLoop loop;
  private final ServerMetrics metrics;
  private final Clock clock;
  private final LongSupplier ticker;
  private final BooleanSupplier accepting;
  private final int defaultMaxTokens;
  private final int maxPromptBytes;
  private final SplittableRandom seeds;
  // Per tokenizer (weak: a retired version's tokenizer goes with it).
  private final java.util.Map<Tokenizer, Integer> longestTokenBytes =
      java.util.Collections.synchronizedMap(new java.util.WeakHashMap<>());

  /**
   * @param ticker monotonic nanoseconds, for latency metrics
   * @param accepting false once shutdown has begun: new calls get UNAVAILABLE
   */
  public GenerationService(
      ModelRegistry models,
      EngineLoop loop,
      ServerMetrics metrics,
      Clock clock,
      LongSupplier ticker,
      BooleanSupplier accepting,
      int defaultMaxTokens,
      int maxPromptBytes,
      long seedOfSeeds) {
    this.models = models;
    this.loop = loop;
    this.metrics = metrics;
    this.clock = clock;
    this.ticker = ticker;
    this.accepting = accepting;
    this.defaultMaxTokens = defaultMaxTokens;
    this.maxPromptBytes = maxPromptBytes;
    this.seeds = new SplittableRandom(seedOfSeeds);
  }

  @Override
  public void generateStream(GenerateRequest request, StreamObserver<GenerateChunk> observer) {
    ServerCallStreamObserver<GenerateChunk> call =
        (ServerCallStreamObserver<GenerateChunk>) observer;
    StreamOutbox outbox = new StreamOutbox(call, OUTBOX_CAPACITY);
    start(
        request,
        call,
        new ResponseSink.Delivery() {
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
        });
  }

  @Override
  public void generate(GenerateRequest request, StreamObserver<GenerateResponse> observer) {
    ServerCallStreamObserver<GenerateResponse> call =
        (ServerCallStreamObserver<GenerateResponse>) observer;
    GenerateResponse.Builder response = GenerateResponse.newBuilder();
    StringBuilder text = new StringBuilder();
    start(
        request,
        call,
        new ResponseSink.Delivery() {
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
        });
  }

  /** Validates, pins, submits; on refusal ends the call with the matching status. */
  private void start(
      GenerateRequest request, ServerCallStreamObserver<?> call, ResponseSink.Delivery delivery) {
    long arrival = ticker.getAsLong();
    String requestId;
    try {
      Utf8Fields.require(request.getModelBytes(), "model");
      Utf8Fields.require(request.getRequestIdBytes(), "request_id");
      requestId =
          request.getRequestId().isEmpty()
              ? RequestIds.current()
              : RequestValidator.checkRequestId(request.getRequestId(), "request_id");
    } catch (InvalidFieldException e) {
      call.onError(Status.INVALID_ARGUMENT.withDescription(e.getMessage()).asRuntimeException());
      return;
    }
    if (!accepting.getAsBoolean()) {
      call.onError(
          Status.UNAVAILABLE.withDescription("the server is shutting down").asRuntimeException());
      return;
    }
    ServedModel model = models.find(request.getModel()).orElse(null);
    if (model == null) {
      call.onError(
          Status.NOT_FOUND
              .withDescription("model: no model named '" + request.getModel() + "' is served")
              .asRuntimeException());
      return;
    }
    ModelVersion version = model.pinServing();
    boolean submitted = false;
    Span span =
        metrics
            .tracer()
            .spanBuilder("kvant.generate")
            .setSpanKind(SpanKind.SERVER)
            .setAttribute("kvant.request_id", requestId)
            .setAttribute("gen_ai.request.model", model.name())
            .setAttribute("kvant.model.version", version.id())
            .startSpan();
    try {
      ValidatedRequest v = validator(version).validate(request, requestId);
      span.setAttribute("gen_ai.usage.input_tokens", v.promptTokens().length);
      ResponseSink[] self = new ResponseSink[1];
      ResponseSink sink =
          new ResponseSink(
              v,
              version.id(),
              delivery,
              (result, arrivalNanos, firstNanos, endNanos) -> {
                model.unpin(version);
                String ran = result.modelVersion() != null ? result.modelVersion() : version.id();
                boolean failed =
                    result.finishReason() == io.kvant.engine.generate.FinishReason.ERROR;
                model.outcome(ran, failed);
                if (!failed) {
                  model.sample(ran, v.promptTokens(), self[0].generatedTokens());
                }
                finished(model.name(), result, arrivalNanos, firstNanos, endNanos, span);
              },
              ticker,
              arrival);
      self[0] = sink;
      GenerationRequest g =
          new GenerationRequest(
              requestId,
              version.engine(),
              v.promptTokens(),
              v.maxTokens(),
              v.sampling(),
              v.stops(),
              v.logprobs(),
              v.priority(),
              deadline(),
              sink);
      // The cancel handler must be in place before the call can be cancelled mid-generation.
      call.setOnCancelHandler(() -> loop.abort(requestId));
      // Before submit: a fast request can finish (and end its span) before submit returns.
      span.addEvent("queued");
      loop.submit(g);
      submitted = true;
    } catch (InvalidFieldException e) {
      refuse(call, span, Status.INVALID_ARGUMENT.withDescription(e.getMessage()), requestId);
    } catch (RejectedException e) {
      Status status =
          switch (e.reason()) {
            case QUEUE_FULL -> Status.RESOURCE_EXHAUSTED.withDescription(e.getMessage());
            case SHUTTING_DOWN -> Status.UNAVAILABLE.withDescription(e.getMessage());
            case INVALID ->
                Status.INVALID_ARGUMENT.withDescription(
                    (e.field() != null ? e.field() + ": " : "") + e.getMessage());
          };
      refuse(call, span, status, requestId);
    } catch (RuntimeException e) {
      LOG.log(Level.ERROR, "request_id=" + requestId + " failed at admission", e);
      refuse(
          call,
          span,
          Status.INTERNAL.withDescription("admission failed (request id " + requestId + ")"),
          requestId);
    } finally {
      if (!submitted) {
        model.unpin(version);
      }
    }
  }

  private void refuse(ServerCallStreamObserver<?> call, Span span, Status status, String id) {
    LOG.log(Level.DEBUG, () -> "request_id=" + id + " refused: " + status);
    span.setStatus(StatusCode.ERROR, status.getCode().name());
    span.end();
    call.onError(status.asRuntimeException());
  }

  private void finished(
      String model, RequestFinal r, long arrival, long first, long end, Span span) {
    double duration = (end - arrival) / 1e9;
    double ttft = first < 0 ? Double.NaN : (first - arrival) / 1e9;
    double tpot =
        first < 0 || r.completionTokens() < 2
            ? Double.NaN
            : (end - first) / 1e9 / (r.completionTokens() - 1);
    String reason = r.finishReason().name().toLowerCase(java.util.Locale.ROOT);
    metrics.recordRequest(
        model, reason, ttft, tpot, duration, r.promptTokens(), r.completionTokens());
    if (first >= 0) {
      span.addEvent("first_token", first, TimeUnit.NANOSECONDS);
    }
    span.setAttribute("gen_ai.usage.output_tokens", r.completionTokens());
    span.setAttribute("gen_ai.response.finish_reasons", reason);
    if (r.finishReason() == io.kvant.engine.generate.FinishReason.ERROR) {
      span.setStatus(StatusCode.ERROR, "engine error");
      LOG.log(Level.ERROR, "request_id=" + r.requestId() + " engine error: " + r.error());
    }
    span.addEvent("finished");
    span.end();
    LOG.log(
        Level.INFO,
        () ->
            String.format(
                "request_id=%s model=%s version=%s finish=%s prompt_tokens=%d completion_tokens=%d"
                    + " cached_tokens=%d ttft_ms=%.1f duration_ms=%.1f",
                r.requestId(),
                model,
                r.modelVersion(),
                reason,
                r.promptTokens(),
                r.completionTokens(),
                r.cachedPromptTokens(),
                ttft * 1e3,
                duration * 1e3));
  }

  private RequestValidator validator(ModelVersion v) {
    LlamaConfig c = v.model().config();
    long seed;
    synchronized (seeds) {
      seed = seeds.nextLong();
    }
    long fixed = seed == 0 ? 1 : seed;
    Tokenizer tokenizer = v.model().tokenizer();
    return new RequestValidator(
        tokenizer,
        c.vocabSize(),
        c.contextLength(),
        defaultMaxTokens,
        maxPromptBytes,
        longestTokenBytes.computeIfAbsent(tokenizer, PromptBudget::longestTokenBytes),
        () -> fixed);
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
    ServedModel model = models.find(request.getModel()).orElse(null);
    if (model == null) {
      observer.onError(
          Status.NOT_FOUND
              .withDescription("model: no model named '" + request.getModel() + "' is served")
              .asRuntimeException());
      return;
    }
    ModelVersion version = model.serving();
    Tokenizer tok = version.model().tokenizer();
    int limit =
        PromptBudget.maxTextBytes(
            version.model().config().contextLength(),
            longestTokenBytes.computeIfAbsent(tok, PromptBudget::longestTokenBytes),
            Math.min(1 << 20, maxPromptBytes));
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
    for (ServedModel m : models.all()) {
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
