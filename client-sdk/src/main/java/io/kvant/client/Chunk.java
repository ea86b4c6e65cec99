package io.kvant.client;

import io.kvant.api.v1.GenerateChunk;
import java.util.List;

/**
 * One piece of a streamed completion: the text (and, if asked, token ids and log-probabilities)
 * produced since the previous chunk. The last chunk of a stream carries the finish reason and
 * usage.
 *
 * @param text new text since the previous chunk (whole UTF-8 characters)
 * @param tokenIds new token ids; empty unless {@code returnTokenIds} was asked; immutable
 * @param logprobs one entry per new token; empty unless {@code logprobs > 0}; immutable
 * @param finishReason why generation ended; {@code null} on every chunk but the last
 * @param usage token counts; {@code null} on every chunk but the last
 * @param modelVersion the model version producing this stream: the same on every chunk of a stream,
 *     IMMEDIATE swaps included (a request that has started finishes on its version)
 * @param requestId the request id (the caller's, the SDK's generated one, or the server's)
 */
public record Chunk(
    String text,
    List<Integer> tokenIds,
    List<TokenLogprob> logprobs,
    FinishReason finishReason,
    Usage usage,
    String modelVersion,
    String requestId) {

  /** Copies the lists into immutable ones. */
  public Chunk {
    tokenIds = List.copyOf(tokenIds);
    logprobs = List.copyOf(logprobs);
  }

  /** Whether this is the last chunk of its stream (it carries {@link #finishReason()}). */
  public boolean isLast() {
    return finishReason != null;
  }

  static Chunk of(GenerateChunk c, String sentRequestId) {
    boolean last =
        c.getFinishReason() != io.kvant.api.v1.FinishReason.FINISH_REASON_UNSPECIFIED
            || c.hasUsage();
    return new Chunk(
        c.getText(),
        c.getTokenIdsList(),
        TokenLogprob.of(c.getLogprobsList()),
        last ? FinishReason.of(c.getFinishReason()) : null,
        last ? (c.hasUsage() ? Usage.of(c.getUsage()) : Usage.ZERO) : null,
        c.getModelVersion(),
        c.getRequestId().isEmpty() ? sentRequestId : c.getRequestId());
  }
}
