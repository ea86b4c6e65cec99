package io.kvant.server.grpc;

import com.google.protobuf.ByteString;
import io.grpc.Status;
import io.kvant.api.v1.ChatRequest;
import io.kvant.api.v1.GenerateRequest;
import io.kvant.api.v1.TokenIds;
import io.kvant.engine.model.LlamaConfig;
import io.kvant.engine.sched.EngineLoop;
import io.kvant.engine.sched.GenerationRequest;
import io.kvant.engine.sched.RejectedException;
import io.kvant.engine.sched.RequestFinal;
import io.kvant.engine.tokenizer.Tokenizer;
import io.kvant.server.chat.ChatMessage;
import io.kvant.server.chat.ChatTemplateException;
import io.kvant.server.chat.ChatTemplates;
import io.kvant.server.metrics.ServerMetrics;
import io.kvant.server.model.ModelRegistry;
import io.kvant.server.model.ModelVersion;
import io.kvant.server.model.ServedModel;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.context.Context;
import java.lang.System.Logger;
import java.lang.System.Logger.Level;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.WeakHashMap;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.LongSupplier;

/**
 * The one way into the engine, shared by every surface (gRPC Generate/Chat, the OpenAI-compatible
 * HTTP API): validates, renders chat prompts, tokenizes, pins the serving model version, opens the
 * {@code kvant.generate} span as a child of the caller's trace, submits to the {@link EngineLoop},
 * and records metrics and the request's log line when it ends. Outputs go to the caller's {@link
 * ResponseSink.Delivery}; refusals before any output to its {@link Caller}, as a gRPC {@link
 * Status} whose description names the field.
 */
public final class Admission {
  private static final Logger LOG = System.getLogger("io.kvant.server.grpc.Generation");

  /** Longest accepted chat role. */
  static final int MAX_ROLE_CHARS = 32;

  /** What a surface provides for one call. */
  public interface Caller {
    /** The request was refused before any output; no delivery follows. */
    void refuse(Status status);

    /**
     * Registers what cancels the admitted request (the surface runs it when its client goes away).
     */
    void onCancel(Runnable cancel);
  }

  /**
   * One call's context.
   *
   * @param requestId the id to use unless the request carries its own {@code request_id}
   * @param parent the caller's trace context (root when it sent none)
   * @param deadline when to give up, or null
   * @param operation {@code text_completion} or {@code chat}, for metrics
   */
  public record CallInfo(String requestId, Context parent, Instant deadline, String operation) {}

  private final ModelRegistry models;
  private final EngineLoop loop;
  private final ServerMetrics metrics;
  private final ChatTemplates templates;
  private final LongSupplier ticker;
  private final BooleanSupplier accepting;
  private final int defaultMaxTokens;
  private final int maxPromptBytes;
  private final SplittableRandom seeds;
  // Per tokenizer (weak: a retired version's tokenizer goes with it).
  private final Map<Tokenizer, Integer> longestTokenBytes =
      Collections.synchronizedMap(new WeakHashMap<>());

  /**
   * @param ticker monotonic nanoseconds, for latency metrics
   * @param accepting false once shutdown has begun: new calls get UNAVAILABLE
   */
  public Admission(
      ModelRegistry models,
      EngineLoop loop,
      ServerMetrics metrics,
      ChatTemplates templates,
      LongSupplier ticker,
      BooleanSupplier accepting,
      int defaultMaxTokens,
      int maxPromptBytes,
      long seedOfSeeds) {
    this.models = models;
    this.loop = loop;
    this.metrics = metrics;
    this.templates = templates;
    this.ticker = ticker;
    this.accepting = accepting;
    this.defaultMaxTokens = defaultMaxTokens;
    this.maxPromptBytes = maxPromptBytes;
    this.seeds = new SplittableRandom(seedOfSeeds);
  }

  /** The registry of served models (for listings). */
  public ModelRegistry models() {
    return models;
  }

  /** Admits a completion request. */
  public void generate(
      GenerateRequest request, CallInfo info, Caller caller, ResponseSink.Delivery delivery) {
    if (!utf8(request.getModelBytes(), "model", caller)
        || !utf8(request.getRequestIdBytes(), "request_id", caller)) {
      return;
    }
    admit(request.getModel(), request.getRequestId(), v -> request, info, caller, delivery);
  }

  /** Admits a chat request: renders its messages with the model's template, then as generate. */
  public void chat(
      ChatRequest request, CallInfo info, Caller caller, ResponseSink.Delivery delivery) {
    if (!utf8(request.getModelBytes(), "model", caller)
        || !utf8(request.getRequestIdBytes(), "request_id", caller)) {
      return;
    }
    admit(
        request.getModel(),
        request.getRequestId(),
        v -> chatPrompt(request, v),
        info,
        caller,
        delivery);
  }

  private static boolean utf8(ByteString bytes, String field, Caller caller) {
    try {
      Utf8Fields.require(bytes, field);
      return true;
    } catch (InvalidFieldException e) {
      caller.refuse(Status.INVALID_ARGUMENT.withDescription(e.getMessage()));
      return false;
    }
  }

  /**
   * The most bytes of text that can fit {@code version}'s context window, and at most {@code cap}
   * ({@link PromptBudget}): text over it is refused before it is tokenized.
   */
  public int maxTextBytes(ModelVersion version, int cap) {
    Tokenizer tok = version.model().tokenizer();
    return PromptBudget.maxTextBytes(
        version.model().config().contextLength(),
        longestTokenBytes.computeIfAbsent(tok, PromptBudget::longestTokenBytes),
        Math.min(cap, maxPromptBytes));
  }

  /** Turns a model version into the request to run on it, or refuses. */
  private interface Preparation {
    GenerateRequest prepare(ModelVersion version);
  }

  /** A refusal that is not a bad field (FAILED_PRECONDITION). */
  private static final class Precondition extends RuntimeException {
    Precondition(String message) {
      super(message, null, false, false);
    }
  }

  private GenerateRequest chatPrompt(ChatRequest r, ModelVersion version) {
    ChatTemplates.ChatPrompt prompt =
        templates
            .forModel(version.model())
            .orElseThrow(
                () ->
                    new Precondition(
                        "model '"
                            + version.id()
                            + "' has no chat template (none in its GGUF tokenizer.chat_template"
                            + " or tokenizer_config.json): start kvant with "
                            + ChatTemplates.FLAG));
    if (r.getMessagesCount() == 0) {
      throw new InvalidFieldException("messages", "must not be empty");
    }
    List<ChatMessage> messages = new ArrayList<>(r.getMessagesCount());
    long bytes = 0;
    for (int i = 0; i < r.getMessagesCount(); i++) {
      var m = r.getMessages(i);
      String role = m.getRole();
      if (role.isEmpty() || role.length() > MAX_ROLE_CHARS) {
        throw new InvalidFieldException(
            "messages[" + i + "].role", "must be 1.." + MAX_ROLE_CHARS + " characters");
      }
      if (!m.getContentBytes().isValidUtf8()) {
        throw new InvalidFieldException("messages[" + i + "].content", "not valid UTF-8");
      }
      bytes += m.getContentBytes().size();
      if (bytes > maxPromptBytes) {
        throw new InvalidFieldException(
            "messages", "at most " + maxPromptBytes + " bytes of content in all");
      }
      messages.add(new ChatMessage(role, m.getContent()));
    }
    String text;
    try {
      text = prompt.template().render(messages, true);
    } catch (ChatTemplateException e) {
      throw new InvalidFieldException("messages", e.getMessage());
    }
    if (text.getBytes(StandardCharsets.UTF_8).length > maxPromptBytes) {
      throw new InvalidFieldException(
          "messages", "the rendered prompt is over " + maxPromptBytes + " bytes");
    }
    int[] ids = prompt.encoder().encode(text);
    if (ids.length == 0) {
      throw new InvalidFieldException("messages", "the chat template rendered an empty prompt");
    }
    int context = version.model().config().contextLength();
    if (ids.length >= context) {
      throw new InvalidFieldException(
          "messages",
          "the rendered prompt is "
              + ids.length
              + " tokens, which leaves no room in the context window of "
              + context
              + " tokens");
    }
    TokenIds.Builder tokens = TokenIds.newBuilder();
    for (int id : ids) {
      tokens.addIds(id);
    }
    return GenerateRequest.newBuilder()
        .setModel(r.getModel())
        .setTokenIds(tokens)
        .setMaxTokens(r.getMaxTokens())
        .setSampling(r.getSampling())
        .addAllStop(r.getStopList())
        .setReturnTokenIds(r.getReturnTokenIds())
        .setLogprobs(r.getLogprobs())
        .setPriority(r.getPriority())
        .setRequestId(r.getRequestId())
        .build();
  }

  private void admit(
      String modelName,
      String ownRequestId,
      Preparation preparation,
      CallInfo info,
      Caller caller,
      ResponseSink.Delivery delivery) {
    long arrival = ticker.getAsLong();
    String requestId;
    try {
      requestId =
          ownRequestId.isEmpty()
              ? info.requestId()
              : RequestValidator.checkRequestId(ownRequestId, "request_id");
    } catch (InvalidFieldException e) {
      caller.refuse(Status.INVALID_ARGUMENT.withDescription(e.getMessage()));
      return;
    }
    if (!accepting.getAsBoolean()) {
      caller.refuse(Status.UNAVAILABLE.withDescription("the server is shutting down"));
      return;
    }
    ServedModel model = models.find(modelName).orElse(null);
    if (model == null) {
      caller.refuse(
          Status.NOT_FOUND.withDescription("model: no model named '" + modelName + "' is served"));
      return;
    }
    ModelVersion version = model.pinServing();
    boolean submitted = false;
    Span span =
        metrics
            .tracer()
            .spanBuilder("kvant.generate")
            .setParent(info.parent())
            .setSpanKind(SpanKind.SERVER)
            .setAttribute("kvant.request_id", requestId)
            .setAttribute("gen_ai.operation.name", info.operation())
            .setAttribute("gen_ai.request.model", model.name())
            .setAttribute("kvant.model.version", version.id())
            .startSpan();
    try {
      GenerateRequest request = preparation.prepare(version);
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
                finished(
                    model.name(),
                    info.operation(),
                    result,
                    arrivalNanos,
                    firstNanos,
                    endNanos,
                    span);
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
              info.deadline(),
              sink);
      // The cancel handler must be in place before the call can be cancelled mid-generation.
      caller.onCancel(() -> loop.abort(requestId));
      // Before submit: a fast request can finish (and end its span) before submit returns.
      span.addEvent("queued");
      loop.submit(g);
      submitted = true;
    } catch (InvalidFieldException e) {
      refuse(caller, span, Status.INVALID_ARGUMENT.withDescription(e.getMessage()), requestId);
    } catch (Precondition e) {
      refuse(caller, span, Status.FAILED_PRECONDITION.withDescription(e.getMessage()), requestId);
    } catch (RejectedException e) {
      Status status =
          switch (e.reason()) {
            case QUEUE_FULL -> Status.RESOURCE_EXHAUSTED.withDescription(e.getMessage());
            case SHUTTING_DOWN -> Status.UNAVAILABLE.withDescription(e.getMessage());
            case INVALID ->
                Status.INVALID_ARGUMENT.withDescription(
                    (e.field() != null ? e.field() + ": " : "") + e.getMessage());
          };
      refuse(caller, span, status, requestId);
    } catch (RuntimeException e) {
      LOG.log(Level.ERROR, "request_id=" + requestId + " failed at admission", e);
      refuse(
          caller,
          span,
          Status.INTERNAL.withDescription("admission failed (request id " + requestId + ")"),
          requestId);
    } finally {
      if (!submitted) {
        model.unpin(version);
      }
    }
  }

  private static void refuse(Caller caller, Span span, Status status, String id) {
    LOG.log(Level.DEBUG, () -> "request_id=" + id + " refused: " + status);
    span.setStatus(StatusCode.ERROR, status.getCode().name());
    span.end();
    caller.refuse(status);
  }

  private void finished(
      String model,
      String operation,
      RequestFinal r,
      long arrival,
      long first,
      long end,
      Span span) {
    double duration = (end - arrival) / 1e9;
    double ttft = first < 0 ? Double.NaN : (first - arrival) / 1e9;
    double tpot =
        first < 0 || r.completionTokens() < 2
            ? Double.NaN
            : (end - first) / 1e9 / (r.completionTokens() - 1);
    String reason = r.finishReason().name().toLowerCase(java.util.Locale.ROOT);
    metrics.recordRequest(
        model, operation, reason, ttft, tpot, duration, r.promptTokens(), r.completionTokens());
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
                "request_id=%s model=%s version=%s operation=%s finish=%s prompt_tokens=%d"
                    + " completion_tokens=%d cached_tokens=%d ttft_ms=%.1f duration_ms=%.1f",
                r.requestId(),
                model,
                r.modelVersion(),
                operation,
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
}
