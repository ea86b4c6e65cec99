package io.kvant.engine.sched;

import java.util.List;

/**
 * New output of a request since the previous delta.
 *
 * @param requestId the request
 * @param text newly final text (never part of a stop sequence); may be empty
 * @param tokenIds newly generated token ids (EOS excluded)
 * @param logprobs one per token id when logprobs were requested, else empty
 * @param modelVersion the version that computed these tokens: the same on every delta of a request
 *     (an IMMEDIATE swap moves only requests that have computed nothing yet)
 */
public record RequestDelta(
    String requestId,
    String text,
    int[] tokenIds,
    List<TokenLogprob> logprobs,
    String modelVersion) {}
