package io.kvant.client;

import io.grpc.Status;

/**
 * The requested model (or, for admin calls, version) is unknown to the sidecar (status {@code
 * NOT_FOUND}).
 */
public final class ModelNotFoundException extends KvantException {
  private static final long serialVersionUID = 1L;

  ModelNotFoundException(Status.Code code, String description, String requestId, Throwable cause) {
    super(code, description, requestId, cause);
  }
}
