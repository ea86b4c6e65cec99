package io.kvant.engine.sched;

/**
 * The log-probability of a generated token and the most likely alternatives.
 *
 * @param tokenId the generated token
 * @param logprob its natural-log probability (after temperature)
 * @param topIds the {@code n} most likely tokens, most likely first
 * @param topLogprobs their log-probabilities
 */
public record TokenLogprob(int tokenId, float logprob, int[] topIds, float[] topLogprobs) {}
