package io.kvant.client;

import io.grpc.Status;

/**
 * The server refused the request as invalid (status {@code INVALID_ARGUMENT}); the description
 * names the field. Retrying the same request cannot succeed.
 */
public final class InvalidRequestException extends KvantException {
  private static final long serialVersionUID = 1L;

  InvalidRequestException(Status.Code code, String description, String requestId, Throwable cause) {
    super(code, description, requestId, cause);
  }
}
