package io.kvant.reload;

/** How in-flight requests move to a new version (mirrors the server's swap policies). */
public enum SwapMode {
  /** In-flight requests finish on their version; new requests get the new one at once. */
  DRAIN,
  /** Every request moves to the new version at the next step boundary. */
  IMMEDIATE,
  /** Admission waits until in-flight requests finish, then the swap happens. */
  PAUSE
}
