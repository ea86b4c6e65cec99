package io.kvant.client;

/**
 * Token counts of a finished request.
 *
 * @param promptTokens tokens in the prompt as the model saw them (BOS included)
 * @param completionTokens tokens generated (stop sequences' tokens included, EOS excluded)
 * @param cachedPromptTokens prompt tokens whose KV came from the prefix cache
 */
public record Usage(int promptTokens, int completionTokens, int cachedPromptTokens) {
  static final Usage ZERO = new Usage(0, 0, 0);

  static Usage of(io.kvant.api.v1.Usage u) {
    return new Usage(u.getPromptTokens(), u.getCompletionTokens(), u.getCachedPromptTokens());
  }
}
