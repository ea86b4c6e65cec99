package io.kvant.server.grpc;

import io.kvant.engine.tokenizer.Tokenizer;
import java.nio.charset.StandardCharsets;

/**
 * How many bytes of prompt text can possibly fit a model's context window, so that a prompt too
 * long for it is refused on its byte count, before any tokenization is paid for.
 *
 * <p>Why this bound is safe: every token of a text prompt stands for at most {@link
 * #longestTokenBytes} bytes of the (normalized) text, so a text of more than {@code contextLength *
 * longestTokenBytes} bytes has more than {@code contextLength} tokens and would be refused after
 * tokenizing anyway. Normalization that shrinks text (collapsing runs of spaces, where a tokenizer
 * does that) makes the bound refuse a few prompts that would have fit; that is documented on {@code
 * GenerateRequest.prompt}. It also bounds the tokenizer's work per request.
 */
final class PromptBudget {
  private PromptBudget() {}

  /** The longest token of {@code tokenizer}, in bytes of its text or its literal (special) form. */
  static int longestTokenBytes(Tokenizer tokenizer) {
    int max = 1;
    for (int id = 0; id < tokenizer.vocabSize(); id++) {
      max = Math.max(max, tokenizer.tokenBytes(id).length);
      max = Math.max(max, tokenizer.piece(id).getBytes(StandardCharsets.UTF_8).length);
    }
    return max;
  }

  /** The most prompt bytes that can fit: {@code min(maxPromptBytes, context * longest)}. */
  static int maxTextBytes(int contextLength, int longestTokenBytes, int maxPromptBytes) {
    return (int) Math.min(maxPromptBytes, (long) contextLength * longestTokenBytes);
  }
}
