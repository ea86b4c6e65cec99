package io.kvant.server.grpc;

import io.grpc.Status;
import io.kvant.api.v1.FinishReason;
import io.kvant.api.v1.GenerateChunk;
import io.kvant.api.v1.TokenLogprob;
import io.kvant.api.v1.TopLogprob;
import io.kvant.api.v1.Usage;
import io.kvant.engine.sched.RequestDelta;
import io.kvant.engine.sched.RequestFinal;
import io.kvant.engine.sched.RequestSink;
import java.util.List;
import java.util.function.LongSupplier;

/**
 * Turns the engine loop's per-request outputs into {@code kvant.v1} chunks, timestamps them for the
 * latency metrics, and hands them to a {@link Delivery} (a stream's outbox, or a unary call's
 * accumulator). Runs on the engine-loop thread: everything here is short and non-blocking.
 */
public final class ResponseSink implements RequestSink {
  /** Where the chunks go. Called on the engine-loop thread: must not block. */
  public interface Delivery {
    void chunk(GenerateChunk chunk);

    /**
     * The request ended: {@code status} OK for STOP/LENGTH, else the error to end the call with.
     */
    void end(GenerateChunk last, Status status);
  }

  /** Told once when the request ends, with its timings (nanoseconds from the ticker). */
  interface Completion {
    void done(RequestFinal result, long arrivalNanos, long firstTokenNanos, long endNanos);
  }

  /** Generated tokens kept per request for {@link #generatedTokens}. */
  static final int MAX_KEPT_TOKENS = 256;

  private final String requestId;
  private final boolean returnTokenIds;
  private final boolean returnLogprobs;
  private final String version;
  private final Delivery delivery;
  private final Completion completion;
  private final LongSupplier ticker;
  private final long arrivalNanos;
  private long firstTokenNanos = -1;
  // The first generated tokens, kept for the reload agent's shadow check (bounded).
  private final int[] generated = new int[MAX_KEPT_TOKENS];
  private int kept;

  ResponseSink(
      ValidatedRequest request,
      String version,
      Delivery delivery,
      Completion completion,
      LongSupplier ticker,
      long arrivalNanos) {
    this.requestId = request.requestId();
    this.returnTokenIds = request.returnTokenIds();
    this.returnLogprobs = request.logprobs() > 0;
    this.version = version;
    this.delivery = delivery;
    this.completion = completion;
    this.ticker = ticker;
    this.arrivalNanos = arrivalNanos;
  }

  @Override
  public void onDelta(RequestDelta delta) {
    for (int t : delta.tokenIds()) {
      if (kept < generated.length) {
        generated[kept++] = t;
      }
    }
    if (delta.tokenIds().length > 0 && firstTokenNanos < 0) {
      firstTokenNanos = ticker.getAsLong();
    }
    if (delta.text().isEmpty() && delta.tokenIds().length == 0) {
      return;
    }
    GenerateChunk.Builder c =
        GenerateChunk.newBuilder()
            .setText(delta.text())
            .setModelVersion(delta.modelVersion())
            .setRequestId(requestId);
    if (returnTokenIds) {
      for (int t : delta.tokenIds()) {
        c.addTokenIds(t);
      }
    }
    if (returnLogprobs) {
      c.addAllLogprobs(convert(delta.logprobs()));
    }
    delivery.chunk(c.build());
  }

  @Override
  public void onFinish(RequestFinal r) {
    long end = ticker.getAsLong();
    GenerateChunk last =
        GenerateChunk.newBuilder()
            .setFinishReason(finishReason(r))
            .setUsage(
                Usage.newBuilder()
                    .setPromptTokens(r.promptTokens())
                    .setCompletionTokens(r.completionTokens())
                    .setCachedPromptTokens(r.cachedPromptTokens()))
            .setModelVersion(r.modelVersion() != null ? r.modelVersion() : version)
            .setRequestId(requestId)
            .build();
    try {
      delivery.end(last, status(r));
    } finally {
      completion.done(r, arrivalNanos, firstTokenNanos, end);
    }
  }

  /** The first generated tokens (at most {@value #MAX_KEPT_TOKENS}), EOS excluded. */
  public int[] generatedTokens() {
    return java.util.Arrays.copyOf(generated, kept);
  }

  static FinishReason finishReason(RequestFinal r) {
    return switch (r.finishReason()) {
      case STOP -> FinishReason.FINISH_REASON_STOP;
      case LENGTH -> FinishReason.FINISH_REASON_LENGTH;
      case CANCELLED -> FinishReason.FINISH_REASON_CANCELLED;
      case ERROR -> FinishReason.FINISH_REASON_ERROR;
    };
  }

  /** The status the call ends with; engine errors are not passed to clients verbatim. */
  Status status(RequestFinal r) {
    return switch (r.finishReason()) {
      case STOP, LENGTH -> Status.OK;
      case CANCELLED ->
          "deadline exceeded".equals(r.error())
              ? Status.DEADLINE_EXCEEDED.withDescription(
                  "deadline exceeded after " + r.completionTokens() + " tokens")
              : RequestFinal.SHUTDOWN.equals(r.error())
                  ? Status.UNAVAILABLE.withDescription(
                      "the server shut down before this request finished (drain timeout passed);"
                          + " safe to retry where no output was received")
                  : Status.CANCELLED.withDescription("request cancelled");
      case ERROR ->
          Status.INTERNAL.withDescription(
              "the engine failed this request (request id " + requestId + ")");
    };
  }

  static List<TokenLogprob> convert(List<io.kvant.engine.sched.TokenLogprob> in) {
    return in.stream()
        .map(
            l -> {
              TokenLogprob.Builder b =
                  TokenLogprob.newBuilder().setTokenId(l.tokenId()).setLogprob(l.logprob());
              for (int i = 0; i < l.topIds().length; i++) {
                b.addTop(
                    TopLogprob.newBuilder()
                        .setTokenId(l.topIds()[i])
                        .setLogprob(l.topLogprobs()[i]));
              }
              return b.build();
            })
        .toList();
  }
}
