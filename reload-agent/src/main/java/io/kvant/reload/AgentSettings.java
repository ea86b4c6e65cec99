package io.kvant.reload;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * Settings of the reload agent (validated by the server's config loader, which names the setting in
 * its messages).
 *
 * @param model model folder in the bucket ({@code <bucket>/<model>/versions/...})
 * @param channel channel to follow ({@code <bucket>/<model>/channels/<name>}); empty: the newest
 *     complete version by manifest time
 * @param pollInterval how often the bucket is listed (a folder is also watched for changes)
 * @param stagingDir where downloads live until verified; kvant's own folder (see {@code Staging})
 * @param qbomDir where {@code qbom.jsonl} is appended; empty: kept in memory only
 * @param watchWindow how long the previous version stays in memory after a swap
 * @param gate quality gate thresholds
 * @param rollbackErrorRate error rate of the new version's requests during the watch window above
 *     which the agent rolls back by itself
 * @param rollbackMinRequests requests seen before the error rate is judged
 * @param defaultMode swap policy when a request does not name one
 * @param autoSwap whether a new version found by polling is swapped in by itself (false: only by
 *     {@code ModelAdmin.Swap})
 * @param goldenPrompts texts the gate runs (tokenized with the model's tokenizer)
 * @param maxDownloadBytes bound on the bytes of one version
 */
public record AgentSettings(
    String model,
    Optional<String> channel,
    Duration pollInterval,
    Path stagingDir,
    Optional<Path> qbomDir,
    Duration watchWindow,
    GateSettings gate,
    double rollbackErrorRate,
    int rollbackMinRequests,
    SwapMode defaultMode,
    boolean autoSwap,
    List<String> goldenPrompts,
    long maxDownloadBytes) {

  /** A few short prompts in the style of the small story models. */
  public static final List<String> BUILTIN_GOLDEN =
      List.of(
          "Once upon a time, there was a little girl named Lily.",
          "The dog ran to the park and saw a big red ball.",
          "Tom and his mom went to the store to buy some food.",
          "One day, a bird flew over the tall tree and sang a song.");

  /**
   * Held-out text for the gate's perplexity comparison with the serving version: never used for
   * calibration, short, in the two styles of the models kvant is tested with (stories and verse).
   */
  public static final List<String> BUILTIN_HELD_OUT =
      List.of(
          "Sam had a little red boat. Every morning he took it to the pond and watched it float."
              + " One day the wind pushed the boat far away, and Sam ran around the pond to catch"
              + " it. His friend Mia helped him, and they laughed when the boat came back.",
          "And the LORD spake unto Moses, saying, Speak unto the children of Israel, that they"
              + " bring me an offering: of every man that giveth it willingly with his heart ye"
              + " shall take my offering.",
          "The sun went down and the stars came out. The little cat curled up by the fire and"
              + " closed her eyes, happy and warm.");

  public AgentSettings {
    Objects.requireNonNull(model, "model");
    Objects.requireNonNull(stagingDir, "stagingDir");
    goldenPrompts = List.copyOf(goldenPrompts);
    if (pollInterval.isNegative() || pollInterval.isZero()) {
      throw new IllegalArgumentException("poll interval must be positive");
    }
  }

  /** Defaults for {@code model} with staging in {@code stagingDir}. */
  public static AgentSettings defaults(String model, Path stagingDir) {
    return new AgentSettings(
        model,
        Optional.empty(),
        Duration.ofSeconds(10),
        stagingDir,
        Optional.empty(),
        Duration.ofMinutes(5),
        GateSettings.defaults(),
        0.05,
        20,
        SwapMode.DRAIN,
        true,
        BUILTIN_GOLDEN,
        64L << 30);
  }

  public AgentSettings withWatchWindow(Duration d) {
    return new AgentSettings(
        model,
        channel,
        pollInterval,
        stagingDir,
        qbomDir,
        d,
        gate,
        rollbackErrorRate,
        rollbackMinRequests,
        defaultMode,
        autoSwap,
        goldenPrompts,
        maxDownloadBytes);
  }

  public AgentSettings withChannel(Optional<String> c) {
    return new AgentSettings(
        model,
        c,
        pollInterval,
        stagingDir,
        qbomDir,
        watchWindow,
        gate,
        rollbackErrorRate,
        rollbackMinRequests,
        defaultMode,
        autoSwap,
        goldenPrompts,
        maxDownloadBytes);
  }

  public AgentSettings withQbomDir(Optional<Path> d) {
    return new AgentSettings(
        model,
        channel,
        pollInterval,
        stagingDir,
        d,
        watchWindow,
        gate,
        rollbackErrorRate,
        rollbackMinRequests,
        defaultMode,
        autoSwap,
        goldenPrompts,
        maxDownloadBytes);
  }

  public AgentSettings withRollback(double errorRate, int minRequests) {
    return new AgentSettings(
        model,
        channel,
        pollInterval,
        stagingDir,
        qbomDir,
        watchWindow,
        gate,
        errorRate,
        minRequests,
        defaultMode,
        autoSwap,
        goldenPrompts,
        maxDownloadBytes);
  }

  public AgentSettings withGate(GateSettings g) {
    return new AgentSettings(
        model,
        channel,
        pollInterval,
        stagingDir,
        qbomDir,
        watchWindow,
        g,
        rollbackErrorRate,
        rollbackMinRequests,
        defaultMode,
        autoSwap,
        goldenPrompts,
        maxDownloadBytes);
  }
}
