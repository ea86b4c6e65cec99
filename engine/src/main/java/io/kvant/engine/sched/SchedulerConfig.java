package io.kvant.engine.sched;

/**
 * Limits of the continuous-batching scheduler.
 *
 * @param maxBatchTokens token budget of one step (decode tokens plus prefill chunks)
 * @param maxSequences most requests running (holding KV) at once
 * @param maxWaiting most requests queued and not yet running; beyond it submit is refused
 */
public record SchedulerConfig(int maxBatchTokens, int maxSequences, int maxWaiting) {
  public SchedulerConfig {
    if (maxBatchTokens <= 0 || maxSequences <= 0 || maxWaiting < 0) {
      throw new IllegalArgumentException(
          "scheduler limits must be positive: max_batch_tokens="
              + maxBatchTokens
              + ", max_sequences="
              + maxSequences
              + ", max_waiting="
              + maxWaiting);
    }
  }
}
