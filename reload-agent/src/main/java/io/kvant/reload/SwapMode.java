package io.kvant.reload;

/** How in-flight requests move to a new version (mirrors the server's swap policies). */
public enum SwapMode {
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
