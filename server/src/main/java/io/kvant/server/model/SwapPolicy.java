package io.kvant.server.model;

/** How in-flight requests move to a new version (see {@code kvant.v1.SwapPolicy}). */
public enum SwapPolicy {
  /** In-flight requests finish on their version; new requests get the new one at once. */
  DRAIN,
  /** Every request moves to the new version at the next step boundary. */
  IMMEDIATE,
  /** Admission waits until in-flight requests finish, then the swap happens. */
  PAUSE
}
