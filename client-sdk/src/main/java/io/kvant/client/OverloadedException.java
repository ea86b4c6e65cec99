package io.kvant.client;

import io.grpc.Status;

/**
 * The sidecar's admission queue was full (status {@code RESOURCE_EXHAUSTED}) on every attempt the
 * retry policy allowed.
 */
public final class OverloadedException extends KvantException {
  private static final long serialVersionUID = 1L;

  OverloadedException(Status.Code code, String description, String requestId, Throwable cause) {
    super(code, description, requestId, cause);
  }
}
