package io.kvant.server.model;

/** How in-flight requests move to a new version (see {@code kvant.v1.SwapPolicy}). */
public enum SwapPolicy {
  /** In-flight requests finish on their version; new requests get the new one at once. */
  DRAIN,
  /**
   * At the next step boundary, requests that have not started computing move to the new version;
   * those already computing finish on theirs (one version per response).
   */
  IMMEDIATE,
  /** Admission waits until in-flight requests finish, then the swap happens. */
  PAUSE
}
