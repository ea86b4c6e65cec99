package io.kvant.engine.sched;

import io.kvant.engine.generate.FinishReason;

/**
 * The end of a request; always the last thing its sink receives, exactly once.
 *
 * @param requestId the request
 * @param finishReason why it ended
 * @param error what went wrong when {@code finishReason} is ERROR; for CANCELLED, {@code "deadline
 *     exceeded"}, {@link #SHUTDOWN}, or null (the client cancelled)
 * @param promptTokens prompt length
 * @param completionTokens tokens generated (EOS excluded)
 * @param cachedPromptTokens prompt tokens served from the prefix cache at first admission
 * @param modelVersion the version the request ran on
 */
public record RequestFinal(
    String requestId,
    FinishReason finishReason,
    String error,
    int promptTokens,
    int completionTokens,
    int cachedPromptTokens,
    String modelVersion) {

  /** The error of a request cancelled because the engine stopped (drain timeout passed). */
  public static final String SHUTDOWN = "server shut down";
}
