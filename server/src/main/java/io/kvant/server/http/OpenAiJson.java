package io.kvant.server.http;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kvant.api.v1.FinishReason;
import io.kvant.api.v1.GenerateChunk;
import io.kvant.api.v1.TokenLogprob;
import io.kvant.api.v1.TopLogprob;
import io.kvant.api.v1.Usage;
import io.kvant.engine.tokenizer.Tokenizer;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * Writes OpenAI's response objects ({@code text_completion}, {@code chat.completion}, their
 * streamed {@code chunk} forms, {@code list} of models, errors) from kvant's chunks.
 */
final class OpenAiJson {
  static final ObjectMapper MAPPER = new ObjectMapper();

  private final String id;
  private final boolean chat;
  private final String model;
  private final long created;
  private final Tokenizer tokenizer;

  /**
   * @param id the response id ({@code cmpl-...} or {@code chatcmpl-...})
   * @param created seconds since the epoch
   * @param tokenizer the served model's tokenizer, for the token strings of logprobs
   */
  OpenAiJson(String id, boolean chat, String model, long created, Tokenizer tokenizer) {
    this.id = id;
    this.chat = chat;
    this.model = model;
    this.created = created;
    this.tokenizer = tokenizer;
  }

  static String finishReason(FinishReason r) {
    return switch (r) {
      case FINISH_REASON_LENGTH -> "length";
      case FINISH_REASON_STOP -> "stop";
      default -> null;
    };
  }

  /** The whole, non-streamed response. */
  ObjectNode complete(
      String text, List<TokenLogprob> logprobs, boolean withLogprobs, GenerateChunk last) {
    ObjectNode o = head(chat ? "chat.completion" : "text_completion", last.getModelVersion());
    ObjectNode choice = o.putArray("choices").addObject().put("index", 0);
    if (chat) {
      choice.putObject("message").put("role", "assistant").put("content", text);
    } else {
      choice.put("text", text);
    }
    if (withLogprobs) {
      choice.set("logprobs", logprobs(logprobs));
    } else {
      choice.putNull("logprobs");
    }
    choice.put("finish_reason", finishReason(last.getFinishReason()));
    o.set("usage", usage(last.getUsage()));
    return o;
  }

  /** A streamed chunk carrying the start of the assistant message (chat only). */
  ObjectNode roleChunk(String version, boolean includeUsage) {
    ObjectNode o = head("chat.completion.chunk", version);
    ObjectNode choice = o.putArray("choices").addObject().put("index", 0);
    choice.putObject("delta").put("role", "assistant").put("content", "");
    choice.putNull("logprobs");
    choice.putNull("finish_reason");
    if (includeUsage) {
      o.putNull("usage");
    }
    return o;
  }

  /** A streamed chunk: new text, and the finish reason when it is the last. */
  ObjectNode chunk(GenerateChunk c, boolean withLogprobs, boolean includeUsage) {
    ObjectNode o = head(chat ? "chat.completion.chunk" : "text_completion", c.getModelVersion());
    ObjectNode choice = o.putArray("choices").addObject().put("index", 0);
    if (chat) {
      ObjectNode delta = choice.putObject("delta");
      if (!c.getText().isEmpty() || c.getFinishReasonValue() == 0) {
        delta.put("content", c.getText());
      }
    } else {
      choice.put("text", c.getText());
    }
    if (withLogprobs && c.getLogprobsCount() > 0) {
      choice.set("logprobs", logprobs(c.getLogprobsList()));
    } else {
      choice.putNull("logprobs");
    }
    String finish = finishReason(c.getFinishReason());
    if (finish == null) {
      choice.putNull("finish_reason");
    } else {
      choice.put("finish_reason", finish);
    }
    if (includeUsage) {
      o.putNull("usage");
    }
    return o;
  }

  /** The extra last chunk of {@code stream_options.include_usage}: no choices, the usage. */
  ObjectNode usageChunk(GenerateChunk last) {
    ObjectNode o = head(chat ? "chat.completion.chunk" : "text_completion", last.getModelVersion());
    o.putArray("choices");
    o.set("usage", usage(last.getUsage()));
    return o;
  }

  private ObjectNode head(String object, String version) {
    ObjectNode o = MAPPER.createObjectNode();
    o.put("id", id).put("object", object).put("created", created).put("model", model);
    o.put("system_fingerprint", version);
    return o;
  }

  private static ObjectNode usage(Usage u) {
    ObjectNode o = MAPPER.createObjectNode();
    o.put("prompt_tokens", u.getPromptTokens());
    o.put("completion_tokens", u.getCompletionTokens());
    o.put("total_tokens", u.getPromptTokens() + u.getCompletionTokens());
    o.putObject("prompt_tokens_details").put("cached_tokens", u.getCachedPromptTokens());
    return o;
  }

  private ObjectNode logprobs(List<TokenLogprob> list) {
    ObjectNode o = MAPPER.createObjectNode();
    if (chat) {
      ArrayNode content = o.putArray("content");
      for (TokenLogprob l : list) {
        ObjectNode t = tokenEntry(l.getTokenId(), l.getLogprob());
        ArrayNode top = t.putArray("top_logprobs");
        for (TopLogprob alt : l.getTopList()) {
          top.add(tokenEntry(alt.getTokenId(), alt.getLogprob()));
        }
        content.add(t);
      }
      o.putNull("refusal");
    } else {
      ArrayNode tokens = o.putArray("tokens");
      ArrayNode values = o.putArray("token_logprobs");
      ArrayNode tops = o.putArray("top_logprobs");
      for (TokenLogprob l : list) {
        tokens.add(token(l.getTokenId()));
        values.add(l.getLogprob());
        ObjectNode top = tops.addObject();
        for (TopLogprob alt : l.getTopList()) {
          top.put(token(alt.getTokenId()), alt.getLogprob());
        }
      }
    }
    return o;
  }

  private ObjectNode tokenEntry(int id, float logprob) {
    ObjectNode t = MAPPER.createObjectNode();
    byte[] bytes = bytes(id);
    t.put("token", new String(bytes, StandardCharsets.UTF_8));
    t.put("logprob", logprob);
    ArrayNode b = t.putArray("bytes");
    for (byte x : bytes) {
      b.add(x & 0xff);
    }
    return t;
  }

  private String token(int id) {
    return new String(bytes(id), StandardCharsets.UTF_8);
  }

  private byte[] bytes(int id) {
    return id >= 0 && id < tokenizer.vocabSize() ? tokenizer.tokenBytes(id) : new byte[0];
  }

  /** OpenAI's error object. */
  static ObjectNode error(OpenAiException e) {
    ObjectNode o = MAPPER.createObjectNode();
    ObjectNode err = o.putObject("error");
    err.put("message", e.getMessage());
    err.put("type", e.type);
    if (e.param == null) {
      err.putNull("param");
    } else {
      err.put("param", e.param);
    }
    if (e.code == null) {
      err.putNull("code");
    } else {
      err.put("code", e.code);
    }
    return o;
  }
}
