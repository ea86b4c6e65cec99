package io.kvant.engine.forward;

import java.util.Locale;

/** Which backend {@code --device} asks for. */
public enum Device {
  /** The CPU engine (the default). */
  CPU,
  /** The CUDA backend; fails at start with one line when there is no usable GPU. */
  CUDA,
  /** CUDA when a usable GPU is present, otherwise the CPU (with one log line saying why). */
  AUTO;

  /**
   * Parses {@code cpu}, {@code cuda} or {@code auto} (any case).
   *
   * @throws IllegalArgumentException naming the accepted values
   */
  public static Device parse(String s) {
    try {
      return valueOf(s.trim().toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException | NullPointerException e) {
      throw new IllegalArgumentException("must be one of cpu, cuda, auto; got '" + s + "'");
    }
  }
}
