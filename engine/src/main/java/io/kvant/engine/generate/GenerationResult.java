package io.kvant.engine.generate;

/**
 * The outcome of one single-sequence generation.
 *
 * @param tokens generated token ids (EOS excluded)
 * @param text their decoded text, stop sequence excluded
 * @param finishReason why it ended
 * @param promptTokens prompt length in tokens
 */
public record GenerationResult(
    int[] tokens, String text, FinishReason finishReason, int promptTokens) {}
