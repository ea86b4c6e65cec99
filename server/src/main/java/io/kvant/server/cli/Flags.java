package io.kvant.server.cli;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Command-line flags of one subcommand: {@code --name value}, {@code --name=value}, and boolean
 * switches. Unknown flags and bad values are {@link UsageException}s naming the flag.
 */
final class Flags {
  private final Map<String, String> values = new HashMap<>();

  /** Thrown for a usage error; the message names the flag. */
  static final class UsageException extends Exception {
    UsageException(String message) {
      super(message);
    }
  }

  private Flags() {}

  /**
   * @param valued flags that take a value
   * @param switches flags that take none
   */
  static Flags parse(List<String> args, Set<String> valued, Set<String> switches)
      throws UsageException {
    Flags f = new Flags();
    for (int i = 0; i < args.size(); i++) {
      String a = args.get(i);
      if (!a.startsWith("--")) {
        throw new UsageException("unexpected argument '" + a + "'");
      }
      String name = a.substring(2);
      String value = null;
      int eq = name.indexOf('=');
      if (eq >= 0) {
        value = name.substring(eq + 1);
        name = name.substring(0, eq);
      }
      if (switches.contains(name)) {
        f.values.put(name, value == null ? "true" : value);
      } else if (valued.contains(name)) {
        if (value == null) {
          if (i + 1 >= args.size()) {
            throw new UsageException("--" + name + ": needs a value");
          }
          value = args.get(++i);
        }
        f.values.put(name, value);
      } else {
        throw new UsageException("unknown flag --" + name);
      }
    }
    return f;
  }

  boolean has(String name) {
    return values.containsKey(name);
  }

  Optional<String> string(String name) {
    return Optional.ofNullable(values.get(name));
  }

  boolean flag(String name) {
    return Boolean.parseBoolean(values.getOrDefault(name, "false"));
  }

  int integer(String name, int def, int min, int max) throws UsageException {
    String v = values.get(name);
    if (v == null) {
      return def;
    }
    try {
      int x = Integer.parseInt(v.strip());
      if (x < min || x > max) {
        throw new UsageException("--" + name + ": must be in [" + min + ", " + max + "], got " + x);
      }
      return x;
    } catch (NumberFormatException e) {
      throw new UsageException("--" + name + ": must be an integer, got '" + v + "'");
    }
  }

  long longValue(String name, long def) throws UsageException {
    String v = values.get(name);
    if (v == null) {
      return def;
    }
    try {
      return Long.parseLong(v.strip());
    } catch (NumberFormatException e) {
      throw new UsageException("--" + name + ": must be an integer, got '" + v + "'");
    }
  }

  float real(String name, float def) throws UsageException {
    String v = values.get(name);
    if (v == null) {
      return def;
    }
    try {
      float x = Float.parseFloat(v.strip());
      if (!Float.isFinite(x)) {
        throw new NumberFormatException();
      }
      return x;
    } catch (NumberFormatException e) {
      throw new UsageException("--" + name + ": must be a number, got '" + v + "'");
    }
  }

  /** Comma- or space-separated integers. */
  int[] integers(String name) throws UsageException {
    String v = values.get(name);
    if (v == null || v.isBlank()) {
      throw new UsageException("--" + name + ": needs a list of integers like 1,2,3");
    }
    String[] parts = v.strip().split("[,\\s]+");
    int[] out = new int[parts.length];
    for (int i = 0; i < parts.length; i++) {
      try {
        out[i] = Integer.parseInt(parts[i]);
      } catch (NumberFormatException e) {
        throw new UsageException("--" + name + ": '" + parts[i] + "' is not an integer");
      }
    }
    return out;
  }
}
