package io.kvant.server.grpc;

/**
 * A request field is invalid; the message starts with the field's name. Maps to INVALID_ARGUMENT.
 */
public final class InvalidFieldException extends RuntimeException {
  private final String field;

  public InvalidFieldException(String field, String problem) {
    super(field + ": " + problem, null, false, false);
    this.field = field;
  }

  /** The proto field path, e.g. {@code sampling.top_p}. */
  public String field() {
    return field;
  }
}
