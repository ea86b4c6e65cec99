package io.kvant.engine.sched;

/**
 * Thrown by {@link EngineLoop#submit} when a request is not admitted. The gRPC layer maps {@link
 * Reason#QUEUE_FULL} to RESOURCE_EXHAUSTED, {@link Reason#INVALID} to INVALID_ARGUMENT (naming
 * {@link #field()}) and {@link Reason#SHUTTING_DOWN} to UNAVAILABLE.
 */
public final class RejectedException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  /** Why a request was refused. */
  public enum Reason {
    /** The waiting queue is at its bound; retry later. */
    QUEUE_FULL,
    /** The request can never run as given. */
    INVALID,
    /** The engine is draining or stopped. */
    SHUTTING_DOWN
  }

  private final Reason reason;
  private final String field;

  public RejectedException(Reason reason, String field, String message) {
    super(field == null ? message : field + ": " + message);
    this.reason = reason;
    this.field = field;
  }

  public Reason reason() {
    return reason;
  }

  /** The request field at fault (proto name, e.g. {@code max_tokens}), or null. */
  public String field() {
    return field;
  }
}
