package io.kvant.reload;

/**
 * The running server as the agent drives it. The server implements this over its served model and
 * swap coordinator; tests implement it in memory.
 */
public interface SwapTarget {
  /** The version serving new requests now. */
  ServingView serving();

  /**
   * Makes {@code version} serve under {@code mode}, keeping the previous one as the rollback
   * target. Returns when new requests get the new version.
   *
   * @param startMillis when the agent started working on it (for the swap duration)
   * @throws SwapRefusedException when the server refuses (the serving version is untouched)
   */
  void swap(StagedVersion version, SwapMode mode, long startMillis) throws SwapRefusedException;

  /** Returns to the rollback target at once. */
  void rollback() throws SwapRefusedException;

  /** Stops holding the rollback target (its watch window passed); it drains and is freed. */
  void dropStandby();

  /** The server refused a swap or rollback. */
  final class SwapRefusedException extends Exception {
    public SwapRefusedException(String message) {
      super(message);
    }
  }
}
