package io.kvant.client;

import io.grpc.Status;

/**
 * The server refused the call's credentials (status {@code UNAUTHENTICATED}): bearer token missing
 * or wrong.
 */
public final class UnauthenticatedException extends KvantException {
  private static final long serialVersionUID = 1L;

  UnauthenticatedException(
      Status.Code code, String description, String requestId, Throwable cause) {
    super(code, description, requestId, cause);
  }
}
