package io.kvant.server.http;

import io.grpc.Status;

/**
 * Maps a refusal of the shared engine path (a gRPC status whose description starts with the {@code
 * kvant.v1} field) to OpenAI's error: the HTTP status, the type, and the parameter as the OpenAI
 * API names it.
 */
final class StatusErrors {
  private StatusErrors() {}

  static OpenAiException of(Status status, boolean chat) {
    String description = status.getDescription() == null ? "" : status.getDescription();
    return switch (status.getCode()) {
      case INVALID_ARGUMENT -> {
        String param = param(description, chat);
        yield new OpenAiException(
            400, "invalid_request_error", param, null, renamed(description, param));
      }
      case FAILED_PRECONDITION ->
          new OpenAiException(
              400, "invalid_request_error", "messages", "chat_template_missing", description);
      case NOT_FOUND ->
          new OpenAiException(
              404, "invalid_request_error", "model", "model_not_found", description);
      case RESOURCE_EXHAUSTED ->
          new OpenAiException(429, "rate_limit_error", null, "queue_full", description);
      case UNAVAILABLE ->
          new OpenAiException(503, "server_error", null, "unavailable", description);
      case DEADLINE_EXCEEDED ->
          new OpenAiException(504, "server_error", null, "timeout", description);
      case UNAUTHENTICATED ->
          new OpenAiException(401, "invalid_request_error", null, "invalid_api_key", description);
      default -> new OpenAiException(500, "server_error", null, null, description);
    };
  }

  /**
   * The description with its leading {@code kvant.v1} field ({@code sampling.top_p: ...}) replaced
   * by the OpenAI parameter the client sent ({@code top_p: ...}).
   */
  static String renamed(String description, String param) {
    int colon = description.indexOf(':');
    return param == null || colon <= 0 ? description : param + description.substring(colon);
  }

  /** The OpenAI parameter for the {@code kvant.v1} field a description starts with. */
  static String param(String description, boolean chat) {
    int colon = description.indexOf(':');
    if (colon <= 0 || description.substring(0, colon).contains(" ")) {
      return null;
    }
    String field = description.substring(0, colon);
    if (field.startsWith("sampling.")) {
      return field.substring("sampling.".length());
    }
    if (field.startsWith("prompt")) {
      return "prompt";
    }
    if (field.equals("logprobs")) {
      return chat ? "top_logprobs" : "logprobs";
    }
    if (field.equals("request_id")) {
      return "x-request-id";
    }
    return field;
  }
}
