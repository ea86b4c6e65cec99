package io.kvant.reload;

/**
 * Steps of the reload pipeline the agent reports (names as in {@code kvant.v1.ModelEvent.Kind}).
 * SWAPPED and ROLLED_BACK are reported by the server's swap coordinator, DRAINED by the server when
 * the last request of a retired version ends.
 */
public enum Step {
  DETECTED,
  DOWNLOADED,
  VERIFIED,
  RECALIBRATED,
  GATE_PASSED,
  STAGED,
  KEPT,
  REJECTED
}
