package io.kvant.server.http;

/**
 * A request the OpenAI-compatible API refuses, rendered as OpenAI's error object: {@code {"error":
 * {"message", "type", "param", "code"}}} with the HTTP status.
 */
final class OpenAiException extends RuntimeException {
  final int httpStatus;
  final String type;
  final String param;
  final String code;

  OpenAiException(int httpStatus, String type, String param, String code, String message) {
    super(message, null, false, false);
    this.httpStatus = httpStatus;
    this.type = type;
    this.param = param;
    this.code = code;
  }

  /** 400 invalid_request_error naming the parameter. */
  static OpenAiException invalid(String param, String message) {
    return new OpenAiException(400, "invalid_request_error", param, null, message);
  }

  /** 400 for a parameter kvant does not implement. */
  static OpenAiException unsupported(String param, String message) {
    return new OpenAiException(
        400, "invalid_request_error", param, "unsupported_parameter", message);
  }
}
