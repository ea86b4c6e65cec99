package io.kvant.client;

import io.grpc.Status;

/**
 * The call was cancelled (status {@code CANCELLED}): by the server, or because the calling thread
 * was interrupted while waiting.
 */
public final class CancelledException extends KvantException {
  private static final long serialVersionUID = 1L;

  CancelledException(Status.Code code, String description, String requestId, Throwable cause) {
    super(code, description, requestId, cause);
  }
}
