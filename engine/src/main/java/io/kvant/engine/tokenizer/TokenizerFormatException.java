package io.kvant.engine.tokenizer;

import java.io.IOException;

/**
 * A tokenizer file or vocabulary is malformed, truncated, or uses a feature this package does not
 * support. The message names the source and the problem.
 */
public final class TokenizerFormatException extends IOException {
  private static final long serialVersionUID = 1L;

  /** Creates an exception whose message is {@code source + ": " + problem}. */
  public TokenizerFormatException(String source, String problem) {
    super(source + ": " + problem);
  }

  /** As {@link #TokenizerFormatException(String, String)}, keeping the underlying cause. */
  public TokenizerFormatException(String source, String problem, Throwable cause) {
    super(source + ": " + problem, cause);
  }
}
