package io.kvant.client;

import io.grpc.Status;

/** The call's deadline expired before it completed (status {@code DEADLINE_EXCEEDED}). */
public final class DeadlineExceededException extends KvantException {
  private static final long serialVersionUID = 1L;

  DeadlineExceededException(
      Status.Code code, String description, String requestId, Throwable cause) {
    super(code, description, requestId, cause);
  }
}
