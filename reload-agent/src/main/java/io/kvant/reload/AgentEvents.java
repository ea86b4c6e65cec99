package io.kvant.reload;

import java.util.Map;

/** Where the agent reports its steps (the server's event bus: WatchEvents, metrics and logs). */
@FunctionalInterface
public interface AgentEvents {
  /**
   * Reports one step. Must not block.
   *
   * @param version the version the step is about
   * @param message human-readable detail (for REJECTED: the reason)
   * @param attrs figures such as {@code recalibrated_tensors}
   */
  void publish(Step step, String version, String message, Map<String, String> attrs);
}
