package io.kvant.server.grpc;

import io.kvant.api.v1.GenerateRequest;
import io.kvant.engine.sample.SamplingParams;
import io.kvant.engine.tokenizer.Tokenizer;
import java.util.List;
import java.util.function.LongSupplier;

/**
 * Checks a {@link GenerateRequest} against the ranges documented in {@code generation.proto} and
 * the served model's limits, and tokenizes its prompt. Every failure is an {@link
 * InvalidFieldException} whose message names the field and the allowed range.
 */
public final class RequestValidator {
  static final int MAX_STOPS = 16;
  static final int MAX_STOP_BYTES = 256;
  static final int MAX_LOGPROBS = 20;
  static final int MAX_TOKENS_LIMIT = 1 << 20;

  private final Tokenizer tokenizer;
  private final int vocabSize;
  private final int contextLength;
  private final int defaultMaxTokens;
  private final int maxPromptBytes;
  private final int maxTextBytes;
  private final LongSupplier seeds;

  /**
   * @param maxPromptBytes the configured bound on prompt text bytes
   * @param longestTokenBytes the longest token of {@code tokenizer} in bytes ({@link
   *     PromptBudget#longestTokenBytes}): with the context length it bounds the prompt text that
   *     can fit, checked before tokenizing
   * @param seeds source of seeds for requests that leave {@code seed} at 0
   */
  public RequestValidator(
      Tokenizer tokenizer,
      int vocabSize,
      int contextLength,
      int defaultMaxTokens,
      int maxPromptBytes,
      int longestTokenBytes,
      LongSupplier seeds) {
    this.tokenizer = tokenizer;
    this.vocabSize = vocabSize;
    this.contextLength = contextLength;
    this.defaultMaxTokens = defaultMaxTokens;
    this.maxPromptBytes = maxPromptBytes;
    this.maxTextBytes = PromptBudget.maxTextBytes(contextLength, longestTokenBytes, maxPromptBytes);
    this.seeds = seeds;
  }

  /**
   * Validates and tokenizes.
   *
   * @param requestId the id to use (from the request, the metadata, or generated)
   * @throws InvalidFieldException naming the first bad field
   */
  public ValidatedRequest validate(GenerateRequest r, String requestId) {
    // Everything that costs nothing is checked before the prompt is tokenized, so that a refused
    // request is cheap whatever its size.
    checkCheapFields(r);
    int maxTokens = r.getMaxTokens();
    if (maxTokens < 0 || maxTokens > MAX_TOKENS_LIMIT) {
      throw new InvalidFieldException(
          "max_tokens",
          "must be in [0, " + MAX_TOKENS_LIMIT + "] (0 = server default), got " + maxTokens);
    }
    if (maxTokens == 0) {
      maxTokens = defaultMaxTokens;
    }

    SamplingParams sampling;
    try {
      var s = r.getSampling();
      if (s.getTopK() > vocabSize) {
        throw new InvalidFieldException(
            "sampling.top_k", "must be in [0, " + vocabSize + "], got " + s.getTopK());
      }
      sampling =
          new SamplingParams(
              s.getTemperature(),
              s.getTopK(),
              s.getTopP(),
              s.getMinP(),
              s.getRepetitionPenalty(),
              s.getPresencePenalty(),
              s.getFrequencyPenalty(),
              s.getSeed() == 0 ? seeds.getAsLong() : s.getSeed());
    } catch (IllegalArgumentException e) {
      // SamplingParams names the field ("top_p: must be in [0, 1], got 1.5").
      String message = e.getMessage();
      int colon = message.indexOf(':');
      throw new InvalidFieldException(
          "sampling." + message.substring(0, colon), message.substring(colon + 2));
    }

    int[] prompt = prompt(r);
    if (prompt.length >= contextLength) {
      throw new InvalidFieldException(
          "prompt",
          prompt.length
              + " tokens leave no room to generate in the context window of "
              + contextLength
              + " tokens");
    }
    // Generation stops at the context window anyway; max_tokens beyond it is clipped, not refused,
    // because clients commonly send a generous fixed max_tokens.
    maxTokens = Math.min(maxTokens, contextLength - prompt.length);
    return new ValidatedRequest(
        prompt,
        maxTokens,
        sampling,
        r.getStopList(),
        r.getReturnTokenIds(),
        r.getLogprobs(),
        r.getPriority(),
        requestId);
  }

  private void checkCheapFields(GenerateRequest r) {
    List<String> stops = r.getStopList();
    if (stops.size() > MAX_STOPS) {
      throw new InvalidFieldException(
          "stop", "at most " + MAX_STOPS + " entries, got " + stops.size());
    }
    for (int i = 0; i < stops.size(); i++) {
      if (!r.getStopBytes(i).isValidUtf8()) {
        throw new InvalidFieldException("stop", "entry " + i + " is not valid UTF-8");
      }
      int bytes = r.getStopBytes(i).size();
      if (bytes < 1 || bytes > MAX_STOP_BYTES) {
        throw new InvalidFieldException(
            "stop", "each entry must be 1.." + MAX_STOP_BYTES + " bytes, got " + bytes);
      }
    }
    if (r.getLogprobs() < 0 || r.getLogprobs() > MAX_LOGPROBS) {
      throw new InvalidFieldException(
          "logprobs", "must be in [0, " + MAX_LOGPROBS + "], got " + r.getLogprobs());
    }
    if (r.getPriority() < -1000 || r.getPriority() > 1000) {
      throw new InvalidFieldException(
          "priority", "must be in [-1000, 1000], got " + r.getPriority());
    }
  }

  /** Checks a client-supplied request id: at most 128 printable ASCII characters. */
  public static String checkRequestId(String id, String field) {
    if (id.length() > 128) {
      throw new InvalidFieldException(field, "at most 128 characters, got " + id.length());
    }
    for (int i = 0; i < id.length(); i++) {
      char c = id.charAt(i);
      if (c < 0x21 || c > 0x7e) {
        throw new InvalidFieldException(field, "must be printable ASCII without spaces");
      }
    }
    return id;
  }

  private int[] prompt(GenerateRequest r) {
    switch (r.getPromptCase()) {
      case TEXT -> {
        if (r.getTextBytes().isEmpty()) {
          throw new InvalidFieldException("prompt.text", "must not be empty");
        }
        int bytes = r.getTextBytes().size();
        if (bytes > maxPromptBytes) {
          throw new InvalidFieldException(
              "prompt.text", "at most " + maxPromptBytes + " bytes, got " + bytes);
        }
        if (bytes > maxTextBytes) {
          throw new InvalidFieldException(
              "prompt.text",
              bytes
                  + " bytes cannot fit the context window of "
                  + contextLength
                  + " tokens (at most "
                  + maxTextBytes
                  + " bytes)");
        }
        if (!r.getTextBytes().isValidUtf8()) {
          throw new InvalidFieldException("prompt.text", "not valid UTF-8");
        }
        return tokenizer.encode(r.getText(), true);
      }
      case TOKEN_IDS -> {
        List<Integer> ids = r.getTokenIds().getIdsList();
        if (ids.isEmpty()) {
          throw new InvalidFieldException("prompt.token_ids", "must not be empty");
        }
        if (ids.size() >= contextLength) {
          throw new InvalidFieldException(
              "prompt.token_ids",
              ids.size() + " tokens leave no room in the context window of " + contextLength);
        }
        int[] out = new int[ids.size()];
        for (int i = 0; i < out.length; i++) {
          int id = ids.get(i);
          if (id < 0 || id >= vocabSize) {
            throw new InvalidFieldException(
                "prompt.token_ids",
                "id " + id + " at index " + i + " is outside [0, " + vocabSize + ")");
          }
          out[i] = id;
        }
        return out;
      }
      default -> throw new InvalidFieldException("prompt", "must be set (text or token_ids)");
    }
  }
}
