package io.kvant.engine.sched;

import io.kvant.engine.sample.SamplingParams;
import java.time.Instant;
import java.util.List;

/**
 * A tokenized generation request, as the gRPC layer hands it to {@link EngineLoop#submit}.
 *
 * @param id unique request id
 * @param model the version the request is pinned to (the serving one at admission)
 * @param promptTokens the prompt, non-empty
 * @param maxTokens most tokens to generate, positive
 * @param sampling how to choose tokens (seeded)
 * @param stops stop sequences (text)
 * @param logprobs how many top alternatives to report per token; 0 reports no logprobs, a negative
 *     value is invalid
 * @param priority lower runs first; FCFS within a priority
 * @param deadline when to give up (finish CANCELLED), or null
 * @param sink where outputs go
 */
public record GenerationRequest(
    String id,
    ServingModel model,
    int[] promptTokens,
    int maxTokens,
    SamplingParams sampling,
    List<String> stops,
    int logprobs,
    int priority,
    Instant deadline,
    RequestSink sink) {
  public GenerationRequest {
    stops = List.copyOf(stops);
    promptTokens = promptTokens.clone();
  }
}
