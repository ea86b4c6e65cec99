package io.kvant.engine.sched;

/**
 * Turns one request's generated token ids into text incrementally (whole characters only). The
 * tokenizer's {@code IncrementalDecoder} fits as {@code new TokenTextDecoder() {append=d::append,
 * flush=d::flush}}.
 */
public interface TokenTextDecoder {
  /** Text that became final with {@code token}; may be empty. */
  String append(int token);

  /** Text still held back at the end of generation. */
  String flush();
}
