package io.kvant.client;

/** Why generation ended (the proto's {@code FinishReason}). */
public enum FinishReason {
  /** End-of-sequence token or a stop sequence. */
  STOP,
  /** {@code max_tokens} or the model's context window reached. */
  LENGTH,
  /** The client cancelled or its deadline expired. */
  CANCELLED,
  /** The server failed the request. */
  ERROR,
  /** The server did not say (an older or newer server than this SDK). */
  UNKNOWN;

  static FinishReason of(io.kvant.api.v1.FinishReason proto) {
    return switch (proto) {
      case FINISH_REASON_STOP -> STOP;
      case FINISH_REASON_LENGTH -> LENGTH;
      case FINISH_REASON_CANCELLED -> CANCELLED;
      case FINISH_REASON_ERROR -> ERROR;
      default -> UNKNOWN;
    };
  }
}
