package io.kvant.perf.sim;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * A request trace for the simulator: CSV lines {@code arrival_s,prompt_tokens,output_tokens} with
 * optional {@code ,prefix_group,shared_tokens} (requests of one group start with the same {@code
 * shared_tokens} tokens, e.g. a system prompt; an empty group shares nothing) and then an optional
 * {@code ,priority} (the scheduler's: lower values are admitted first and preempted last; default
 * 0). Blank lines, {@code #} comments and a header line starting with a letter are skipped.
 */
public final class Trace {
  private Trace() {}

  /**
   * One request of a trace.
   *
   * @param arrivalS arrival time in seconds
   * @param promptTokens prompt length
   * @param outputTokens tokens to generate
   * @param prefixGroup group sharing a prefix; empty for none
   * @param sharedTokens leading prompt tokens shared within the group
   * @param priority scheduling priority, lower first (as the server's requests carry it)
   */
  public record Entry(
      double arrivalS,
      int promptTokens,
      int outputTokens,
      String prefixGroup,
      int sharedTokens,
      int priority) {
    public Entry {
      if (!(arrivalS >= 0) || promptTokens < 1 || outputTokens < 1) {
        throw new IllegalArgumentException("need arrival >= 0, prompt >= 1 and output >= 1 tokens");
      }
      if (sharedTokens < 0 || sharedTokens > promptTokens) {
        throw new IllegalArgumentException("shared_tokens must be in [0, prompt_tokens]");
      }
    }

    /** The prompt's token ids: the group's shared prefix, then ids unique to request {@code i}. */
    int[] prompt(int i) {
      int[] t = new int[promptTokens];
      int g = prefixGroup.hashCode();
      for (int j = 0; j < promptTokens; j++) {
        t[j] =
            j < sharedTokens
                ? Math.floorMod(g * 31 + j, 1 << 20)
                : (1 << 20) + Math.floorMod(i * 7919 + j, 1 << 20);
      }
      return t;
    }
  }

  /**
   * Reads a trace, sorted by arrival.
   *
   * @throws IllegalArgumentException naming the line of a malformed entry
   */
  public static List<Entry> read(Path file) throws IOException {
    return parse(Files.readAllLines(file));
  }

  /** Parses trace lines (see the class comment). */
  public static List<Entry> parse(List<String> lines) {
    List<Entry> out = new ArrayList<>();
    for (int n = 0; n < lines.size(); n++) {
      String line = lines.get(n).strip();
      if (line.isEmpty() || line.startsWith("#") || Character.isLetter(line.charAt(0))) {
        continue;
      }
      String[] f = line.split(",");
      try {
        if (f.length != 3 && f.length != 5 && f.length != 6) {
          throw new IllegalArgumentException("expected 3, 5 or 6 fields, got " + f.length);
        }
        out.add(
            new Entry(
                Double.parseDouble(f[0].strip()),
                Integer.parseInt(f[1].strip()),
                Integer.parseInt(f[2].strip()),
                f.length >= 5 ? f[3].strip() : "",
                f.length >= 5 ? Integer.parseInt(f[4].strip()) : 0,
                f.length == 6 ? Integer.parseInt(f[5].strip()) : 0));
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException("trace line " + (n + 1) + ": " + e.getMessage(), e);
      }
    }
    out.sort(Comparator.comparingDouble(Entry::arrivalS));
    return List.copyOf(out);
  }
}
