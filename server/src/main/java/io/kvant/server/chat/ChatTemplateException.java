package io.kvant.server.chat;

/**
 * A template could not render a conversation: it called {@code raise_exception(...)} (the message
 * is the template's) or failed to parse or evaluate.
 */
public final class ChatTemplateException extends RuntimeException {
  public ChatTemplateException(String message) {
    super(message, null, false, false);
  }
}
