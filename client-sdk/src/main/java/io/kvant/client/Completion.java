package io.kvant.client;

import io.kvant.api.v1.GenerateResponse;
import java.util.List;

/**
 * A whole generated completion.
 *
 * @param text the generated text (stop sequence excluded)
 * @param tokenIds generated token ids; empty unless {@code returnTokenIds} was asked; immutable
 * @param logprobs one entry per generated token; empty unless {@code logprobs > 0}; immutable
 * @param finishReason why generation ended; never null
 * @param usage token counts; never null
 * @param modelVersion the model version that produced the completion
 * @param requestId the request id (the caller's, the SDK's generated one, or the server's)
 */
public record Completion(
    String text,
    List<Integer> tokenIds,
    List<TokenLogprob> logprobs,
    FinishReason finishReason,
    Usage usage,
    String modelVersion,
    String requestId) {

  /** Copies the lists into immutable ones. */
  public Completion {
    tokenIds = List.copyOf(tokenIds);
    logprobs = List.copyOf(logprobs);
  }

  static Completion of(GenerateResponse r, String sentRequestId) {
    return new Completion(
        r.getText(),
        r.getTokenIdsList(),
        TokenLogprob.of(r.getLogprobsList()),
        FinishReason.of(r.getFinishReason()),
        r.hasUsage() ? Usage.of(r.getUsage()) : Usage.ZERO,
        r.getModelVersion(),
        r.getRequestId().isEmpty() ? sentRequestId : r.getRequestId());
  }
}
