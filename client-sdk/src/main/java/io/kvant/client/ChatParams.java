package io.kvant.client;

import io.kvant.api.v1.ChatMessage;
import io.kvant.api.v1.ChatRequest;
import io.kvant.api.v1.GenerateRequest;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * A conversation for {@link KvantClient#chat}: the messages, which the server renders with the
 * model's chat template, and the same generation options as {@link GenerateParams} (same names,
 * defaults and ranges, checked by {@link Builder#build()}).
 *
 * <pre>{@code
 * ChatParams params = ChatParams.builder()
 *     .system("You answer in one sentence.")
 *     .user("What is a KV cache?")
 *     .maxTokens(64).temperature(0.7f)
 *     .build();
 * Completion answer = client.chat(params);
 * }</pre>
 *
 * <p>Immutable and thread-safe.
 */
public final class ChatParams {
  private static final int MAX_ROLE_CHARS = 32;

  /**
   * One message.
   *
   * @param role {@code system}, {@code user}, {@code assistant}, or another role the model's
   *     template knows (1 to 32 characters)
   * @param content what was said
   */
  public record Message(String role, String content) {
    public Message {
      Objects.requireNonNull(role, "role");
      Objects.requireNonNull(content, "content");
    }
  }

  private final List<Message> messages;
  private final ChatRequest request;

  private ChatParams(List<Message> messages, ChatRequest request) {
    this.messages = List.copyOf(messages);
    this.request = request;
  }

  public static Builder builder() {
    return new Builder();
  }

  /** The conversation, oldest first. */
  public List<Message> messages() {
    return messages;
  }

  /** The caller's request id; empty when none was set. */
  public String requestId() {
    return request.getRequestId();
  }

  ChatRequest toProto() {
    return request;
  }

  @Override
  public String toString() {
    return "ChatParams" + messages;
  }

  /** Collects messages and options; not thread-safe. */
  public static final class Builder {
    private final List<Message> messages = new ArrayList<>();
    // The options are those of a completion; a placeholder prompt lets GenerateParams check them.
    private final GenerateParams.Builder options = GenerateParams.builder().prompt("-");

    private Builder() {}

    /** Appends a message. */
    public Builder message(String role, String content) {
      messages.add(new Message(role, content));
      return this;
    }

    /** Appends messages. */
    public Builder messages(List<Message> list) {
      messages.addAll(list);
      return this;
    }

    public Builder system(String content) {
      return message("system", content);
    }

    public Builder user(String content) {
      return message("user", content);
    }

    public Builder assistant(String content) {
      return message("assistant", content);
    }

    /** See {@link GenerateParams.Builder#model}. */
    public Builder model(String model) {
      options.model(model);
      return this;
    }

    /** See {@link GenerateParams.Builder#maxTokens}. */
    public Builder maxTokens(int maxTokens) {
      options.maxTokens(maxTokens);
      return this;
    }

    /** See {@link GenerateParams.Builder#temperature}. */
    public Builder temperature(float temperature) {
      options.temperature(temperature);
      return this;
    }

    /** See {@link GenerateParams.Builder#topK}. */
    public Builder topK(int topK) {
      options.topK(topK);
      return this;
    }

    /** See {@link GenerateParams.Builder#topP}. */
    public Builder topP(float topP) {
      options.topP(topP);
      return this;
    }

    /** See {@link GenerateParams.Builder#minP}. */
    public Builder minP(float minP) {
      options.minP(minP);
      return this;
    }

    /** See {@link GenerateParams.Builder#repetitionPenalty}. */
    public Builder repetitionPenalty(float penalty) {
      options.repetitionPenalty(penalty);
      return this;
    }

    /** See {@link GenerateParams.Builder#presencePenalty}. */
    public Builder presencePenalty(float penalty) {
      options.presencePenalty(penalty);
      return this;
    }

    /** See {@link GenerateParams.Builder#frequencyPenalty}. */
    public Builder frequencyPenalty(float penalty) {
      options.frequencyPenalty(penalty);
      return this;
    }

    /** See {@link GenerateParams.Builder#seed}. */
    public Builder seed(long seed) {
      options.seed(seed);
      return this;
    }

    /** See {@link GenerateParams.Builder#stop(String...)}. */
    public Builder stop(String... stop) {
      options.stop(stop);
      return this;
    }

    /** See {@link GenerateParams.Builder#returnTokenIds}. */
    public Builder returnTokenIds(boolean returnTokenIds) {
      options.returnTokenIds(returnTokenIds);
      return this;
    }

    /** See {@link GenerateParams.Builder#logprobs}. */
    public Builder logprobs(int logprobs) {
      options.logprobs(logprobs);
      return this;
    }

    /** See {@link GenerateParams.Builder#priority}. */
    public Builder priority(int priority) {
      options.priority(priority);
      return this;
    }

    /** See {@link GenerateParams.Builder#requestId}. */
    public Builder requestId(String requestId) {
      options.requestId(requestId);
      return this;
    }

    /**
     * @throws IllegalArgumentException naming the first bad field ({@code messages}, {@code
     *     messages[i].role}, or an option as {@link GenerateParams.Builder#build()} names it)
     */
    public ChatParams build() {
      if (messages.isEmpty()) {
        throw new IllegalArgumentException("messages: must not be empty");
      }
      ChatRequest.Builder r = ChatRequest.newBuilder();
      for (int i = 0; i < messages.size(); i++) {
        Message m = messages.get(i);
        if (m.role().isEmpty() || m.role().length() > MAX_ROLE_CHARS) {
          throw new IllegalArgumentException(
              "messages[" + i + "].role: must be 1 to " + MAX_ROLE_CHARS + " characters");
        }
        r.addMessages(ChatMessage.newBuilder().setRole(m.role()).setContent(m.content()));
      }
      GenerateRequest o = options.build().toProto();
      r.setModel(o.getModel())
          .setMaxTokens(o.getMaxTokens())
          .addAllStop(o.getStopList())
          .setReturnTokenIds(o.getReturnTokenIds())
          .setLogprobs(o.getLogprobs())
          .setPriority(o.getPriority())
          .setRequestId(o.getRequestId());
      if (o.hasSampling()) {
        r.setSampling(o.getSampling());
      }
      return new ChatParams(messages, r.build());
    }
  }
}
