package io.kvant.server.http;

import com.fasterxml.jackson.databind.JsonNode;
import io.kvant.api.v1.ChatMessage;
import io.kvant.api.v1.ChatRequest;
import io.kvant.api.v1.GenerateRequest;
import io.kvant.api.v1.SamplingParams;
import io.kvant.api.v1.TokenIds;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * An OpenAI {@code /v1/completions} or {@code /v1/chat/completions} body turned into the {@code
 * kvant.v1} request the engine path takes. Fields kvant honours: model, prompt / messages,
 * max_tokens (max_completion_tokens), temperature, top_p, stop, seed, n (1 only), logprobs
 * (top_logprobs for chat), presence_penalty, frequency_penalty, user, stream, stream_options; a
 * field kvant cannot honour, or a bad value, is an {@link OpenAiException} naming the parameter. A
 * JSON {@code null} is the same as an absent field.
 */
final class OpenAiRequest {
  /** The most logprob alternatives OpenAI allows for completions. */
  static final int MAX_COMPLETION_LOGPROBS = 5;

  private static final Set<String> COMMON =
      Set.of(
          "model",
          "max_tokens",
          "temperature",
          "top_p",
          "stop",
          "seed",
          "n",
          "logprobs",
          "presence_penalty",
          "frequency_penalty",
          "user",
          "stream",
          "stream_options");
  private static final Set<String> COMPLETIONS =
      union(COMMON, "prompt", "echo", "best_of", "suffix");
  private static final Set<String> CHAT =
      union(
          COMMON,
          "messages",
          "top_logprobs",
          "max_completion_tokens",
          "response_format",
          "store",
          "metadata");

  final boolean chat;
  final String model;
  final boolean stream;
  final boolean includeUsage;
  final int logprobs;
  final GenerateRequest completion;
  final ChatRequest chatRequest;

  private OpenAiRequest(
      boolean chat,
      String model,
      boolean stream,
      boolean includeUsage,
      int logprobs,
      GenerateRequest completion,
      ChatRequest chatRequest) {
    this.chat = chat;
    this.model = model;
    this.stream = stream;
    this.includeUsage = includeUsage;
    this.logprobs = logprobs;
    this.completion = completion;
    this.chatRequest = chatRequest;
  }

  /** Parses a {@code /v1/completions} body. */
  static OpenAiRequest completion(JsonNode body) {
    Common c = common(body, COMPLETIONS);
    if (present(body, "echo") && bool(body, "echo")) {
      throw OpenAiException.unsupported("echo", "echo: kvant does not echo the prompt");
    }
    if (present(body, "best_of") && integer(body, "best_of") != 1) {
      throw OpenAiException.unsupported("best_of", "best_of: only 1 is supported");
    }
    if (present(body, "suffix")) {
      throw OpenAiException.unsupported("suffix", "suffix: insertion is not supported");
    }
    int logprobs = 0;
    if (present(body, "logprobs")) {
      logprobs = integer(body, "logprobs");
      if (logprobs < 0 || logprobs > MAX_COMPLETION_LOGPROBS) {
        throw OpenAiException.invalid(
            "logprobs",
            "logprobs: must be in [0, " + MAX_COMPLETION_LOGPROBS + "], got " + logprobs);
      }
    }
    GenerateRequest.Builder r =
        GenerateRequest.newBuilder()
            .setModel(c.model)
            .setMaxTokens(c.maxTokens)
            .setSampling(c.sampling)
            .addAllStop(c.stops)
            .setLogprobs(logprobs);
    JsonNode prompt = body.get("prompt");
    if (prompt == null || prompt.isNull()) {
      throw OpenAiException.invalid("prompt", "prompt: is required");
    }
    if (prompt.isTextual()) {
      r.setText(prompt.asText());
    } else if (prompt.isArray() && prompt.size() == 1 && prompt.get(0).isTextual()) {
      r.setText(prompt.get(0).asText());
    } else if (prompt.isArray() && prompt.size() > 0 && allInts(prompt)) {
      TokenIds.Builder ids = TokenIds.newBuilder();
      prompt.forEach(n -> ids.addIds(n.asInt()));
      r.setTokenIds(ids);
    } else {
      throw OpenAiException.invalid(
          "prompt", "prompt: must be a string, a list of one string, or a list of token ids");
    }
    return new OpenAiRequest(false, c.model, c.stream, c.includeUsage, logprobs, r.build(), null);
  }

  /** Parses a {@code /v1/chat/completions} body. */
  static OpenAiRequest chat(JsonNode body) {
    Common c = common(body, CHAT);
    if (present(body, "max_completion_tokens")) {
      int m = integer(body, "max_completion_tokens");
      if (m < 1) {
        throw OpenAiException.invalid(
            "max_completion_tokens", "max_completion_tokens: must be at least 1, got " + m);
      }
      c.maxTokens = m;
    }
    int logprobs = 0;
    boolean wantLogprobs = present(body, "logprobs") && bool(body, "logprobs");
    if (present(body, "top_logprobs")) {
      int top = integer(body, "top_logprobs");
      if (top < 0 || top > 20) {
        throw OpenAiException.invalid(
            "top_logprobs", "top_logprobs: must be in [0, 20], got " + top);
      }
      if (!wantLogprobs) {
        throw OpenAiException.invalid("top_logprobs", "top_logprobs: needs logprobs: true");
      }
      logprobs = top;
    }
    if (wantLogprobs && logprobs == 0) {
      // kvant returns a token's own logprob together with at least one alternative.
      logprobs = 1;
    }
    if (present(body, "response_format")) {
      String type = body.get("response_format").path("type").asText("");
      if (!type.equals("text")) {
        throw OpenAiException.unsupported(
            "response_format", "response_format: only {\"type\": \"text\"} is supported");
      }
    }
    JsonNode messages = body.get("messages");
    if (messages == null || !messages.isArray() || messages.isEmpty()) {
      throw OpenAiException.invalid("messages", "messages: must be a non-empty list");
    }
    List<ChatMessage> list = new ArrayList<>();
    for (int i = 0; i < messages.size(); i++) {
      list.add(message(messages.get(i), "messages[" + i + "]"));
    }
    ChatRequest r =
        ChatRequest.newBuilder()
            .setModel(c.model)
            .addAllMessages(list)
            .setMaxTokens(c.maxTokens)
            .setSampling(c.sampling)
            .addAllStop(c.stops)
            .setLogprobs(logprobs)
            .build();
    return new OpenAiRequest(
        true, c.model, c.stream, c.includeUsage, wantLogprobs ? logprobs : 0, null, r);
  }

  private static ChatMessage message(JsonNode m, String where) {
    if (!m.isObject()) {
      throw OpenAiException.invalid(where, where + ": must be an object with role and content");
    }
    for (Iterator<String> it = m.fieldNames(); it.hasNext(); ) {
      String f = it.next();
      if (!Set.of("role", "content", "name").contains(f) && !m.get(f).isNull()) {
        throw OpenAiException.unsupported(
            where + "." + f, where + "." + f + ": not supported (role, content and name are)");
      }
    }
    JsonNode role = m.get("role");
    if (role == null || !role.isTextual() || role.asText().isEmpty()) {
      throw OpenAiException.invalid(where + ".role", where + ".role: must be a non-empty string");
    }
    String r = role.asText().equals("developer") ? "system" : role.asText();
    JsonNode content = m.get("content");
    String text;
    if (content == null || content.isNull()) {
      text = "";
    } else if (content.isTextual()) {
      text = content.asText();
    } else if (content.isArray()) {
      StringBuilder b = new StringBuilder();
      for (int i = 0; i < content.size(); i++) {
        JsonNode part = content.get(i);
        if (!part.path("type").asText().equals("text") || !part.path("text").isTextual()) {
          throw OpenAiException.unsupported(
              where + ".content[" + i + "]",
              where + ".content[" + i + "]: only text parts are supported");
        }
        b.append(part.get("text").asText());
      }
      text = b.toString();
    } else {
      throw OpenAiException.invalid(
          where + ".content", where + ".content: must be a string or a list of text parts");
    }
    return ChatMessage.newBuilder().setRole(r).setContent(text).build();
  }

  /** The fields both endpoints share. */
  private static final class Common {
    String model;
    boolean stream;
    boolean includeUsage;
    int maxTokens;
    SamplingParams sampling;
    List<String> stops = new ArrayList<>();
  }

  private static Common common(JsonNode body, Set<String> known) {
    if (body == null || !body.isObject()) {
      throw OpenAiException.invalid(null, "the request body must be a JSON object");
    }
    for (Iterator<Map.Entry<String, JsonNode>> it = body.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> e = it.next();
      if (!known.contains(e.getKey()) && !e.getValue().isNull()) {
        throw OpenAiException.unsupported(
            e.getKey(), e.getKey() + ": this parameter is not supported by kvant");
      }
    }
    Common c = new Common();
    JsonNode model = body.get("model");
    if (model == null || !model.isTextual()) {
      throw OpenAiException.invalid("model", "model: is required (a string; see GET /v1/models)");
    }
    c.model = model.asText();
    c.stream = present(body, "stream") && bool(body, "stream");
    if (present(body, "stream_options")) {
      JsonNode o = body.get("stream_options");
      if (!c.stream) {
        throw OpenAiException.invalid(
            "stream_options", "stream_options: only allowed when stream is true");
      }
      if (!o.isObject()) {
        throw OpenAiException.invalid("stream_options", "stream_options: must be an object");
      }
      c.includeUsage = o.path("include_usage").asBoolean(false);
    }
    if (present(body, "n") && integer(body, "n") != 1) {
      throw OpenAiException.unsupported("n", "n: only 1 choice per request is supported");
    }
    if (present(body, "max_tokens")) {
      c.maxTokens = integer(body, "max_tokens");
      if (c.maxTokens < 1) {
        throw OpenAiException.invalid(
            "max_tokens", "max_tokens: must be at least 1, got " + c.maxTokens);
      }
    }
    if (present(body, "user") && !body.get("user").isTextual()) {
      throw OpenAiException.invalid("user", "user: must be a string");
    }
    SamplingParams.Builder s = SamplingParams.newBuilder();
    if (present(body, "temperature")) {
      s.setTemperature((float) number(body, "temperature"));
    } else {
      // OpenAI's default temperature is 1, not greedy.
      s.setTemperature(1f);
    }
    if (present(body, "top_p")) {
      s.setTopP((float) number(body, "top_p"));
    }
    if (present(body, "presence_penalty")) {
      s.setPresencePenalty((float) number(body, "presence_penalty"));
    }
    if (present(body, "frequency_penalty")) {
      s.setFrequencyPenalty((float) number(body, "frequency_penalty"));
    }
    if (present(body, "seed")) {
      JsonNode seed = body.get("seed");
      if (!seed.isIntegralNumber() || !seed.canConvertToLong()) {
        throw OpenAiException.invalid("seed", "seed: must be an integer");
      }
      s.setSeed(seed.asLong());
    }
    c.sampling = s.build();
    if (present(body, "stop")) {
      JsonNode stop = body.get("stop");
      if (stop.isTextual()) {
        c.stops.add(stop.asText());
      } else if (stop.isArray()) {
        for (JsonNode x : stop) {
          if (!x.isTextual()) {
            throw OpenAiException.invalid("stop", "stop: must be a string or a list of strings");
          }
          c.stops.add(x.asText());
        }
      } else {
        throw OpenAiException.invalid("stop", "stop: must be a string or a list of strings");
      }
    }
    return c;
  }

  private static boolean present(JsonNode body, String field) {
    JsonNode n = body.get(field);
    return n != null && !n.isNull();
  }

  private static boolean bool(JsonNode body, String field) {
    JsonNode n = body.get(field);
    if (!n.isBoolean()) {
      throw OpenAiException.invalid(field, field + ": must be true or false");
    }
    return n.asBoolean();
  }

  private static int integer(JsonNode body, String field) {
    JsonNode n = body.get(field);
    if (!n.isIntegralNumber() || !n.canConvertToInt()) {
      throw OpenAiException.invalid(field, field + ": must be an integer, got " + n);
    }
    return n.asInt();
  }

  private static double number(JsonNode body, String field) {
    JsonNode n = body.get(field);
    if (!n.isNumber()) {
      throw OpenAiException.invalid(field, field + ": must be a number, got " + n);
    }
    return n.asDouble();
  }

  private static boolean allInts(JsonNode array) {
    for (JsonNode n : array) {
      if (!n.isIntegralNumber() || !n.canConvertToInt()) {
        return false;
      }
    }
    return true;
  }

  private static Set<String> union(Set<String> a, String... more) {
    Set<String> s = new java.util.HashSet<>(a);
    s.addAll(List.of(more));
    return Set.copyOf(s);
  }
}
