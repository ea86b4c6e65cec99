package io.kvant.client;

import io.grpc.Status;

/**
 * The call failed with a status that has no dedicated subclass, e.g. {@code FAILED_PRECONDITION}
 * (an admin swap refused by the quality gate), {@code PERMISSION_DENIED} or {@code INTERNAL}; see
 * {@link #code()}.
 */
public final class KvantRpcException extends KvantException {
  private static final long serialVersionUID = 1L;

  KvantRpcException(Status.Code code, String description, String requestId, Throwable cause) {
    super(code, description, requestId, cause);
  }
}
