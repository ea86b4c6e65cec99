package io.kvant.server.chat;

/**
 * One message of a conversation, as a chat template sees it ({@code message['role']}, {@code
 * message['content']}).
 */
public record ChatMessage(String role, String content) {}
