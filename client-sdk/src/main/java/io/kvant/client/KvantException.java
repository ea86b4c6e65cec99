package io.kvant.client;

import io.grpc.Status;

/**
 * A kvant call failed with a gRPC status. Each status code the API documents has its own subclass
 * so callers can catch what they can handle ({@link OverloadedException}, {@link
 * ModelNotFoundException}, ...); every other code surfaces as {@link KvantRpcException}.
 *
 * <p>Instances are immutable and safe to share between threads.
 */
public abstract sealed class KvantException extends RuntimeException
    permits InvalidRequestException,
        ModelNotFoundException,
        OverloadedException,
        UnavailableException,
        DeadlineExceededException,
        CancelledException,
        UnauthenticatedException,
        KvantRpcException {

  private static final long serialVersionUID = 1L;

  private final Status.Code code;
  private final String description;
  private final String requestId;

  KvantException(Status.Code code, String description, String requestId, Throwable cause) {
    super(message(code, description, requestId), cause);
    this.code = code;
    this.description = description == null ? "" : description;
    this.requestId = requestId == null ? "" : requestId;
  }

  private static String message(Status.Code code, String description, String requestId) {
    StringBuilder sb = new StringBuilder(code.name());
    if (description != null && !description.isEmpty()) {
      sb.append(": ").append(description);
    }
    if (requestId != null && !requestId.isEmpty()) {
      sb.append(" (request id ").append(requestId).append(')');
    }
    return sb.toString();
  }

  /** The gRPC status code the call ended with; never null. */
  public Status.Code code() {
    return code;
  }

  /** The status description the server (or the gRPC runtime) gave; empty if none, never null. */
  public String description() {
    return description;
  }

  /**
   * The request id the call was sent with (the caller's, or the one the SDK generated), so that the
   * failure can be found in the sidecar's logs; never null.
   */
  public String requestId() {
    return requestId;
  }
}
