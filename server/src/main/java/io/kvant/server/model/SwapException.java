package io.kvant.server.model;

/** A swap could not happen; the serving version is untouched. Maps to FAILED_PRECONDITION. */
public final class SwapException extends Exception {
  public SwapException(String message) {
    super(message);
  }

  public SwapException(String message, Throwable cause) {
    super(message, cause);
  }
}
