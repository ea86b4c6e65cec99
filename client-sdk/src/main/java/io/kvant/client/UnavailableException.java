package io.kvant.client;

import io.grpc.Status;

/**
 * No sidecar could take the call (status {@code UNAVAILABLE}: unreachable, shutting down, model not
 * yet warm, or the stream broke after output had started) on every attempt the retry policy
 * allowed.
 */
public final class UnavailableException extends KvantException {
  private static final long serialVersionUID = 1L;

  UnavailableException(Status.Code code, String description, String requestId, Throwable cause) {
    super(code, description, requestId, cause);
  }
}
