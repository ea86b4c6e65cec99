package io.kvant.perf.cli;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Command-line options of the form {@code --name value} or {@code --name=value}, and bare flags
 * ({@code --name} followed by another option or nothing). Every option must be read by the command;
 * {@link #checkAllUsed()} rejects the rest, so a typo is an error rather than silently ignored.
 */
public final class Args {
  private final Map<String, String> values = new LinkedHashMap<>();
  private final Set<String> used = new HashSet<>();
  private List<String> raw = List.of();

  private Args() {}

  /**
   * Parses options.
   *
   * @throws IllegalArgumentException for a positional argument or a repeated option
   */
  public static Args parse(List<String> argv) {
    Args a = new Args();
    a.raw = List.copyOf(argv);
    for (int i = 0; i < argv.size(); i++) {
      String s = argv.get(i);
      if (!s.startsWith("--") || s.length() == 2) {
        throw new IllegalArgumentException(
            "unexpected argument '" + s + "' (options are --name value)");
      }
      String name;
      String value;
      int eq = s.indexOf('=');
      if (eq > 0) {
        name = s.substring(2, eq);
        value = s.substring(eq + 1);
      } else {
        name = s.substring(2);
        boolean hasValue = i + 1 < argv.size() && !argv.get(i + 1).startsWith("--");
        value = hasValue ? argv.get(++i) : "";
      }
      if (a.values.put(name, value) != null) {
        throw new IllegalArgumentException("--" + name + " given twice");
      }
    }
    return a;
  }

  /** The arguments as given. */
  public List<String> raw() {
    return raw;
  }

  /** The value of {@code --name}, if given. */
  public Optional<String> get(String name) {
    used.add(name);
    return Optional.ofNullable(values.get(name));
  }

  /** The value of {@code --name}, or {@code def}. */
  public String get(String name, String def) {
    return get(name).orElse(def);
  }

  /**
   * The value of a required option.
   *
   * @throws IllegalArgumentException if absent or empty
   */
  public String required(String name) {
    String v = get(name).orElse("");
    if (v.isEmpty()) {
      throw new IllegalArgumentException("--" + name + " is required");
    }
    return v;
  }

  /** Whether a flag is present (a flag given a value counts only if the value is "true"). */
  public boolean flag(String name) {
    return get(name).map(v -> v.isEmpty() || v.equals("true")).orElse(false);
  }

  /**
   * An integer option.
   *
   * @throws IllegalArgumentException naming the option if not an integer
   */
  public int intValue(String name, int def) {
    return get(name).map(v -> parseInt(name, v)).orElse(def);
  }

  /** A long option. */
  public long longValue(String name, long def) {
    return get(name)
        .map(
            v -> {
              try {
                return Long.parseLong(v);
              } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--" + name + ": not an integer: '" + v + "'");
              }
            })
        .orElse(def);
  }

  /** A decimal option; {@code inf} is positive infinity. */
  public double doubleValue(String name, double def) {
    return get(name).map(v -> parseDouble(name, v)).orElse(def);
  }

  /** A duration option: {@code 500ms}, {@code 2s}, {@code 1.5m}, or plain seconds. */
  public Optional<Duration> duration(String name) {
    return get(name).map(v -> parseDuration(name, v));
  }

  /** A comma-separated list of integers, e.g. {@code 1,2,4,8}. */
  public List<Integer> intList(String name, List<Integer> def) {
    Optional<String> v = get(name);
    if (v.isEmpty()) {
      return def;
    }
    List<Integer> out = new ArrayList<>();
    for (String p : v.get().split(",")) {
      out.add(parseInt(name, p.trim()));
    }
    return List.copyOf(out);
  }

  /**
   * Rejects options no getter asked for.
   *
   * @throws IllegalArgumentException listing them
   */
  public void checkAllUsed() {
    List<String> unknown = values.keySet().stream().filter(k -> !used.contains(k)).toList();
    if (!unknown.isEmpty()) {
      throw new IllegalArgumentException("unknown option(s): --" + String.join(", --", unknown));
    }
  }

  static int parseInt(String name, String v) {
    try {
      return Integer.parseInt(v);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("--" + name + ": not an integer: '" + v + "'");
    }
  }

  static double parseDouble(String name, String v) {
    if (v.equalsIgnoreCase("inf")) {
      return Double.POSITIVE_INFINITY;
    }
    try {
      return Double.parseDouble(v);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("--" + name + ": not a number: '" + v + "'");
    }
  }

  /**
   * Parses {@code 250ms}, {@code 2s}, {@code 1.5m}, {@code 1h} or plain seconds.
   *
   * @throws IllegalArgumentException naming the option
   */
  public static Duration parseDuration(String name, String v) {
    String s = v.trim();
    double mult;
    String num;
    if (s.endsWith("ms")) {
      mult = 1e-3;
      num = s.substring(0, s.length() - 2);
    } else if (s.endsWith("s")) {
      mult = 1;
      num = s.substring(0, s.length() - 1);
    } else if (s.endsWith("m")) {
      mult = 60;
      num = s.substring(0, s.length() - 1);
    } else if (s.endsWith("h")) {
      mult = 3600;
      num = s.substring(0, s.length() - 1);
    } else {
      mult = 1;
      num = s;
    }
    double seconds = parseDouble(name, num) * mult;
    if (!(seconds >= 0) || Double.isInfinite(seconds)) {
      throw new IllegalArgumentException("--" + name + ": bad duration '" + v + "'");
    }
    return Duration.ofNanos(Math.round(seconds * 1e9));
  }
}
