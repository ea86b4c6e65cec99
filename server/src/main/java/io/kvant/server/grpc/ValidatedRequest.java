package io.kvant.server.grpc;

import io.kvant.engine.sample.SamplingParams;
import java.util.List;

/**
 * A {@code GenerateRequest} after validation and tokenization: everything the scheduler needs.
 *
 * @param promptTokens the prompt as token ids (BOS included when the model wants one)
 * @param maxTokens generated tokens allowed, >= 1
 * @param sampling sampling parameters with a concrete seed
 * @param stops stop sequences
 * @param returnTokenIds whether responses carry token ids
 * @param logprobs alternatives per token to return, 0 for none
 * @param priority lower is served first
 * @param requestId the request id used in logs and responses
 */
public record ValidatedRequest(
    int[] promptTokens,
    int maxTokens,
    SamplingParams sampling,
    List<String> stops,
    boolean returnTokenIds,
    int logprobs,
    int priority,
    String requestId) {}
