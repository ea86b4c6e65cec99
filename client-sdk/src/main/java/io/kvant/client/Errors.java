package io.kvant.client;

import io.grpc.Status;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;

/** Maps gRPC statuses to the SDK's exception types. */
final class Errors {
  private Errors() {}

  static KvantException from(Status status, String requestId) {
    Status.Code code = status.getCode();
    String description = status.getDescription();
    Throwable cause = status.getCause();
    return switch (code) {
      case INVALID_ARGUMENT -> new InvalidRequestException(code, description, requestId, cause);
      case NOT_FOUND -> new ModelNotFoundException(code, description, requestId, cause);
      case RESOURCE_EXHAUSTED -> new OverloadedException(code, description, requestId, cause);
      case UNAVAILABLE -> new UnavailableException(code, description, requestId, cause);
      case DEADLINE_EXCEEDED -> new DeadlineExceededException(code, description, requestId, cause);
      case CANCELLED -> new CancelledException(code, description, requestId, cause);
      case UNAUTHENTICATED -> new UnauthenticatedException(code, description, requestId, cause);
      default -> new KvantRpcException(code, description, requestId, cause);
    };
  }

  static CancelledException interrupted(String requestId, InterruptedException e) {
    return new CancelledException(
        Status.Code.CANCELLED, "interrupted while waiting for the call", requestId, e);
  }

  /**
   * Unwraps what a future of this SDK failed with. The futures only ever fail with a {@link
   * KvantException} or are cancelled by their user.
   */
  static RuntimeException unwrap(Throwable t, String requestId) {
    Throwable cause = t;
    while ((cause instanceof ExecutionException || cause instanceof CompletionException)
        && cause.getCause() != null) {
      cause = cause.getCause();
    }
    if (cause instanceof KvantException k) {
      return k;
    }
    if (cause instanceof CancellationException) {
      return new CancelledException(
          Status.Code.CANCELLED, "the call's future was cancelled", requestId, cause);
    }
    if (cause instanceof RuntimeException r) {
      return r;
    }
    return new KvantRpcException(Status.Code.UNKNOWN, String.valueOf(cause), requestId, cause);
  }
}
