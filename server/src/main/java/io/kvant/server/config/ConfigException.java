package io.kvant.server.config;

/**
 * A setting is missing, malformed or out of range; the message names the setting and its source.
 */
public final class ConfigException extends Exception {
  public ConfigException(String message) {
    super(message);
  }
}
