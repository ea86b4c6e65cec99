package io.kvant.server.config;

import io.kvant.reload.SwapMode;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;

/**
 * Settings of the reload agent (used when {@code --bucket} is set). YAML keys under {@code agent.};
 * each has a flag (see {@link ConfigLoader#flagHelp}).
 *
 * @param bucketModel model folder in the bucket; empty: the served model's name
 * @param channel channel to follow; empty: the newest complete version
 * @param pollInterval bucket listing period
 * @param stagingDir download staging folder, kvant's own (marked; a foreign non-empty folder is
 *     refused at start; only kvant's downloads in it are deleted)
 * @param qbomDir folder of {@code qbom.jsonl}; empty: QBOM kept in memory only
 * @param watchWindow how long the previous version is kept for rollback
 * @param autoSwap whether new versions are swapped in by polling (false: only by the Swap RPC)
 * @param swapPolicy default swap policy
 * @param gateMinTop1 minimum top-1 agreement of the quality gate
 * @param gateMaxKl maximum mean KL divergence of the quality gate
 * @param rollbackErrorRate error rate in the watch window that triggers a rollback
 * @param rollbackMinRequests requests in the window before the error rate counts
 * @param s3 S3 endpoint, region and credentials
 * @param gate the gate's thresholds against the serving version and the shadow check's
 */
public record AgentConfig(
    Optional<String> bucketModel,
    Optional<String> channel,
    Duration pollInterval,
    Path stagingDir,
    Optional<Path> qbomDir,
    Duration watchWindow,
    boolean autoSwap,
    SwapMode swapPolicy,
    double gateMinTop1,
    double gateMaxKl,
    double rollbackErrorRate,
    int rollbackMinRequests,
    S3Config s3,
    GateConfig gate) {

  /** The settings without {@code gate} (its defaults). */
  public AgentConfig(
      Optional<String> bucketModel,
      Optional<String> channel,
      Duration pollInterval,
      Path stagingDir,
      Optional<Path> qbomDir,
      Duration watchWindow,
      boolean autoSwap,
      SwapMode swapPolicy,
      double gateMinTop1,
      double gateMaxKl,
      double rollbackErrorRate,
      int rollbackMinRequests,
      S3Config s3) {
    this(
        bucketModel,
        channel,
        pollInterval,
        stagingDir,
        qbomDir,
        watchWindow,
        autoSwap,
        swapPolicy,
        gateMinTop1,
        gateMaxKl,
        rollbackErrorRate,
        rollbackMinRequests,
        s3,
        GateConfig.defaults());
  }

  /**
   * The gate against the version serving now, and the shadow check in the watch window (YAML keys
   * {@code agent.gate.max_ppl_ratio}, {@code agent.gate.max_kl_vs_serving}, {@code
   * agent.shadow.every}, {@code agent.shadow.min_positions}, {@code agent.shadow.min_top1}, {@code
   * agent.shadow.max_kl}; see {@link io.kvant.reload.GateSettings}).
   */
  public record GateConfig(
      double maxPplRatio,
      double maxKlVsServing,
      int shadowEvery,
      int shadowMinPositions,
      double shadowMinTop1,
      double shadowMaxKl) {
    public static GateConfig defaults() {
      io.kvant.reload.GateSettings d = io.kvant.reload.GateSettings.defaults();
      return new GateConfig(
          d.maxPplRatio(),
          d.maxKlVsServing(),
          d.shadowEvery(),
          d.shadowMinPositions(),
          d.shadowMinTop1(),
          d.shadowMaxKl());
    }
  }

  /**
   * @param endpoint endpoint override for S3-compatible stores, empty for AWS
   * @param region signing region
   * @param pathStyle path-style addressing
   * @param accessKey static access key (read from the environment variable the config names)
   * @param secretKey static secret key
   */
  public record S3Config(
      Optional<String> endpoint,
      String region,
      boolean pathStyle,
      Optional<String> accessKey,
      Optional<String> secretKey) {}

  /** The defaults of every setting. */
  public static AgentConfig defaults() {
    return new AgentConfig(
        Optional.empty(),
        Optional.empty(),
        Duration.ofSeconds(10),
        Path.of("kvant-staging"),
        Optional.empty(),
        Duration.ofMinutes(5),
        true,
        SwapMode.DRAIN,
        0.9,
        0.1,
        0.05,
        20,
        new S3Config(Optional.empty(), "us-east-1", true, Optional.empty(), Optional.empty()));
  }
}
