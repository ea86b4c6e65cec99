package io.kvant.engine.generate;

/** Why a generation ended (mirrors {@code kvant.v1.FinishReason}). */
public enum FinishReason {
  /** End-of-sequence token or a stop sequence. */
  STOP,
  /** max_tokens or the context window reached. */
  LENGTH,
  /** Cancelled by the caller or its deadline. */
  CANCELLED,
  /** Failed; the error is reported separately. */
  ERROR
}
