package io.kvant.perf.load;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The prompts of a run: either synthetic (random common English words, a {@link LengthDist} of
 * words long) or the non-blank lines of a file, used in order and cycled. Request {@code i}'s
 * prompt and output length depend only on the seed and {@code i}, so runs are reproducible.
 *
 * <p>A sweep gives each level {@link #forLevel its own synthetic prompts}, drawn from the same
 * distributions: with the same prompts at every level, a server with a prefix cache would serve a
 * later level's prompts from what an earlier level prefilled, and the later levels would measure
 * the cache (perf/RESULTS.md, session 19: the same level twice on one server, 3,291 then 6,460
 * output tokens/s with 98% of the prompt tokens cached). A file's prompts are the user's own and
 * stay the same at every level.
 */
public final class PromptSource {
  private static final String[] WORDS = {
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "with",
    "was",
    "on",
    "be",
    "by",
    "at",
    "this",
    "from",
    "or",
    "an",
    "are",
    "which",
    "have",
    "not",
    "but",
    "cache",
    "model",
    "token",
    "request",
    "server",
    "memory",
    "batch",
    "layer",
    "weight",
    "stream",
    "latency",
    "quantized",
    "kernel",
    "vector",
    "block",
    "prefix",
    "swap",
    "version",
    "queue"
  };

  private final List<String> lines;
  private final LengthDist promptWords;
  private final LengthDist outputTokens;
  private final long seed;

  private PromptSource(
      List<String> lines, LengthDist promptWords, LengthDist outputTokens, long seed) {
    this.lines = lines;
    this.promptWords = promptWords;
    this.outputTokens = outputTokens;
    this.seed = seed;
  }

  /** Synthetic prompts. */
  public static PromptSource synthetic(LengthDist promptWords, LengthDist outputTokens, long seed) {
    return new PromptSource(null, promptWords, outputTokens, seed);
  }

  /**
   * The prompts of level {@code level} (0-based) of a sweep: this source itself for level 0 and for
   * prompts from a file; otherwise synthetic prompts of the same lengths under a seed derived from
   * this one and {@code level}, so no two levels share a prompt but a run is still reproducible.
   *
   * @throws IllegalArgumentException if {@code level} is negative
   */
  public PromptSource forLevel(int level) {
    if (level < 0) {
      throw new IllegalArgumentException("level must be >= 0, got " + level);
    }
    if (level == 0 || lines != null) {
      return this;
    }
    long levelSeed = new SplittableRandom(seed ^ (0xD1B54A32D192ED03L * level)).nextLong();
    return new PromptSource(null, promptWords, outputTokens, levelSeed);
  }

  /**
   * Prompts from a file, one per non-blank line.
   *
   * @throws IllegalArgumentException if the file has no prompt
   */
  public static PromptSource fromFile(Path file, LengthDist outputTokens, long seed)
      throws IOException {
    List<String> lines = Files.readAllLines(file).stream().filter(l -> !l.isBlank()).toList();
    if (lines.isEmpty()) {
      throw new IllegalArgumentException("--prompts: " + file + " has no prompts");
    }
    return new PromptSource(lines, null, outputTokens, seed);
  }

  /**
   * The prompt and output-length bound of request {@code i}.
   *
   * @param prompt the text
   * @param maxTokens the output length asked ({@code max_tokens})
   */
  public record Item(String prompt, int maxTokens) {}

  /** Request {@code i}'s prompt and output length. */
  public Item get(int i) {
    SplittableRandom rnd = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + i);
    int maxTokens = outputTokens.sample(rnd);
    if (lines != null) {
      return new Item(lines.get(Math.floorMod(i, lines.size())), maxTokens);
    }
    int n = promptWords.sample(rnd);
    StringBuilder sb = new StringBuilder();
    for (int w = 0; w < n; w++) {
      if (w > 0) {
        sb.append(' ');
      }
      sb.append(WORDS[rnd.nextInt(WORDS.length)]);
    }
    return new Item(sb.toString(), maxTokens);
  }
}
