package io.kvant.client;

import io.kvant.api.v1.GenerateRequest;
import io.kvant.api.v1.SamplingParams;
import io.kvant.api.v1.TokenIds;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * The parameters of one generation request, with the field names, defaults and ranges of the
 * proto's {@code GenerateRequest} and {@code SamplingParams}. Every numeric field's default is the
 * proto's zero value, which means "off" or "the server default" as documented on each setter.
 *
 * <p>{@link Builder#build()} checks every documented range, so an invalid request fails in the
 * caller's thread before anything is sent. The ranges that depend on the model (token ids below the
 * vocabulary size, {@code top_k} up to it, prompt length against the context window) are checked by
 * the server.
 *
 * <p>Instances are immutable and thread-safe; one may be sent any number of times.
 *
 * <pre>{@code
 * GenerateParams params = GenerateParams.builder()
 *     .prompt("Write a haiku about caches")
 *     .maxTokens(64)
 *     .temperature(0.7f)
 *     .topP(0.9f)
 *     .stop("\n\n")
 *     .build();
 * }</pre>
 */
public final class GenerateParams {
  private static final int MAX_TOKENS = 1 << 20;
  private static final int MAX_STOPS = 16;
  private static final int MAX_STOP_BYTES = 256;
  private static final int MAX_REQUEST_ID_CHARS = 128;

  private final GenerateRequest request;

  private GenerateParams(GenerateRequest request) {
    this.request = request;
  }

  /** A builder with every field at its default; the prompt must be set. */
  public static Builder builder() {
    return new Builder();
  }

  /**
   * The proto request these parameters are sent as. Its {@code request_id} is empty unless {@link
   * Builder#requestId} was set (the SDK then sends a generated id in {@code x-request-id}).
   */
  public GenerateRequest toProto() {
    return request;
  }

  /** The caller's request id; empty when none was set. */
  public String requestId() {
    return request.getRequestId();
  }

  @Override
  public String toString() {
    return "GenerateParams{" + request.toString().replace('\n', ' ').trim() + "}";
  }

  /**
   * Builds {@link GenerateParams}. Setters only record values; {@link #build()} validates. Not
   * thread-safe.
   */
  public static final class Builder {
    private String model = "";
    private String prompt;
    private List<Integer> promptTokenIds;
    private int maxTokens;
    private float temperature;
    private int topK;
    private float topP;
    private float minP;
    private float repetitionPenalty;
    private float presencePenalty;
    private float frequencyPenalty;
    private long seed;
    private List<String> stop = List.of();
    private boolean returnTokenIds;
    private int logprobs;
    private int priority;
    private String requestId = "";

    private Builder() {}

    /** Model name; default empty, meaning the sidecar's default model. */
    public Builder model(String model) {
      this.model = Objects.requireNonNull(model, "model");
      return this;
    }

    /**
     * The prompt as text (tokenized by the server, BOS prepended when the model wants one). Exactly
     * one of {@code prompt} and {@link #promptTokenIds} must be set, and it must not be empty.
     */
    public Builder prompt(String text) {
      this.prompt = Objects.requireNonNull(text, "prompt");
      return this;
    }

    /** The prompt as token ids, used as given (nothing prepended). See {@link #prompt(String)}. */
    public Builder promptTokenIds(int... ids) {
      List<Integer> list = new ArrayList<>(ids.length);
      for (int id : ids) {
        list.add(id);
      }
      this.promptTokenIds = List.copyOf(list);
      return this;
    }

    /** The prompt as token ids, used as given (nothing prepended). See {@link #prompt(String)}. */
    public Builder promptTokenIds(List<Integer> ids) {
      this.promptTokenIds = List.copyOf(ids);
      return this;
    }

    /** Upper bound on generated tokens, in [0, 1048576]; default 0, the server default. */
    public Builder maxTokens(int maxTokens) {
      this.maxTokens = maxTokens;
      return this;
    }

    /** Softmax temperature in [0, 100]; default 0, greedy decoding. */
    public Builder temperature(float temperature) {
      this.temperature = temperature;
      return this;
    }

    /** Keep only the k most likely tokens, in [0, vocab_size]; default 0, off. */
    public Builder topK(int topK) {
      this.topK = topK;
      return this;
    }

    /** Nucleus sampling threshold in [0, 1]; default 0 (0 and 1 mean off). */
    public Builder topP(float topP) {
      this.topP = topP;
      return this;
    }

    /** Drop tokens below min_p times the top token's probability, in [0, 1]; default 0, off. */
    public Builder minP(float minP) {
      this.minP = minP;
      return this;
    }

    /** CTRL-style repetition penalty in [0, 10]; default 0 (0 and 1 mean off). */
    public Builder repetitionPenalty(float repetitionPenalty) {
      this.repetitionPenalty = repetitionPenalty;
      return this;
    }

    /** Presence penalty in [-2, 2]; default 0, off. */
    public Builder presencePenalty(float presencePenalty) {
      this.presencePenalty = presencePenalty;
      return this;
    }

    /** Frequency penalty in [-2, 2]; default 0, off. */
    public Builder frequencyPenalty(float frequencyPenalty) {
      this.frequencyPenalty = frequencyPenalty;
      return this;
    }

    /**
     * Seed of the request's random generator, read as an unsigned 64-bit value (any long is valid);
     * default 0, a seed chosen by the server (not reproducible).
     */
    public Builder seed(long seed) {
      this.seed = seed;
      return this;
    }

    /**
     * Stop sequences, replacing any set before: at most 16, each 1 to 256 bytes of UTF-8. Default
     * none.
     */
    public Builder stop(String... stop) {
      return stop(List.of(stop));
    }

    /** Stop sequences; see {@link #stop(String...)}. */
    public Builder stop(List<String> stop) {
      this.stop = List.copyOf(stop);
      return this;
    }

    /** Whether the output carries generated token ids; default false. */
    public Builder returnTokenIds(boolean returnTokenIds) {
      this.returnTokenIds = returnTokenIds;
      return this;
    }

    /** Alternatives to return per generated token, in [0, 20]; default 0, none. */
    public Builder logprobs(int logprobs) {
      this.logprobs = logprobs;
      return this;
    }

    /** Scheduling priority in [-1000, 1000], lower served first; default 0. */
    public Builder priority(int priority) {
      this.priority = priority;
      return this;
    }

    /**
     * The caller's request id: at most 128 printable ASCII characters. Default empty: the SDK
     * generates a UUID per call. Either way it is sent as {@code x-request-id} and carried by any
     * {@link KvantException}.
     */
    public Builder requestId(String requestId) {
      this.requestId = Objects.requireNonNull(requestId, "requestId");
      return this;
    }

    /**
     * Validates and builds.
     *
     * @throws IllegalArgumentException naming the first field out of its range, e.g. {@code "top_p:
     *     must be in [0, 1], got 1.5"}
     */
    public GenerateParams build() {
      GenerateRequest.Builder r = GenerateRequest.newBuilder().setModel(model);
      if (prompt != null && promptTokenIds != null) {
        throw new IllegalArgumentException("prompt: set either text or token ids, not both");
      }
      if (prompt != null && !prompt.isEmpty()) {
        r.setText(prompt);
      } else if (promptTokenIds != null && !promptTokenIds.isEmpty()) {
        for (int id : promptTokenIds) {
          if (id < 0) {
            throw new IllegalArgumentException(
                "prompt.token_ids: must be in [0, vocab_size), got " + id);
          }
        }
        r.setTokenIds(TokenIds.newBuilder().addAllIds(promptTokenIds));
      } else {
        throw new IllegalArgumentException("prompt: must not be empty");
      }
      r.setMaxTokens(checkRange("max_tokens", maxTokens, 0, MAX_TOKENS));

      SamplingParams.Builder s =
          SamplingParams.newBuilder()
              .setTemperature(checkRange("temperature", temperature, 0, 100))
              .setTopK(checkRange("top_k", topK, 0, Integer.MAX_VALUE, "[0, vocab_size]"))
              .setTopP(checkRange("top_p", topP, 0, 1))
              .setMinP(checkRange("min_p", minP, 0, 1))
              .setRepetitionPenalty(checkRange("repetition_penalty", repetitionPenalty, 0, 10))
              .setPresencePenalty(checkRange("presence_penalty", presencePenalty, -2, 2))
              .setFrequencyPenalty(checkRange("frequency_penalty", frequencyPenalty, -2, 2))
              .setSeed(seed);
      SamplingParams sampling = s.build();
      // An all-default SamplingParams means greedy, the same as an absent one: keep it off the
      // wire.
      if (!sampling.equals(SamplingParams.getDefaultInstance())) {
        r.setSampling(sampling);
      }

      if (stop.size() > MAX_STOPS) {
        throw new IllegalArgumentException(
            "stop: must have at most " + MAX_STOPS + " entries, got " + stop.size());
      }
      for (int i = 0; i < stop.size(); i++) {
        int bytes = stop.get(i).getBytes(StandardCharsets.UTF_8).length;
        if (bytes < 1 || bytes > MAX_STOP_BYTES) {
          throw new IllegalArgumentException(
              "stop[" + i + "]: must be 1 to " + MAX_STOP_BYTES + " bytes of UTF-8, got " + bytes);
        }
      }
      r.addAllStop(stop);
      r.setReturnTokenIds(returnTokenIds);
      r.setLogprobs(checkRange("logprobs", logprobs, 0, 20));
      r.setPriority(checkRange("priority", priority, -1000, 1000));
      r.setRequestId(checkRequestId(requestId));
      return new GenerateParams(r.build());
    }
  }

  static String checkRequestId(String id) {
    if (id.length() > MAX_REQUEST_ID_CHARS) {
      throw new IllegalArgumentException(
          "request_id: must be at most "
              + MAX_REQUEST_ID_CHARS
              + " printable ASCII characters, got "
              + id.length()
              + " characters");
    }
    for (int i = 0; i < id.length(); i++) {
      char c = id.charAt(i);
      if (c < 0x20 || c > 0x7e) {
        throw new IllegalArgumentException(
            "request_id: must be printable ASCII, got character 0x"
                + Integer.toHexString(c)
                + " at index "
                + i);
      }
    }
    return id;
  }

  private static int checkRange(String field, int value, int lo, int hi) {
    return checkRange(field, value, lo, hi, "[" + lo + ", " + hi + "]");
  }

  private static int checkRange(String field, int value, int lo, int hi, String range) {
    if (value < lo || value > hi) {
      throw new IllegalArgumentException(field + ": must be in " + range + ", got " + value);
    }
    return value;
  }

  private static float checkRange(String field, float value, int lo, int hi) {
    // Written so that NaN fails too.
    if (!(value >= lo && value <= hi)) {
      throw new IllegalArgumentException(
          field + ": must be in [" + lo + ", " + hi + "], got " + value);
    }
    return value;
  }
}
