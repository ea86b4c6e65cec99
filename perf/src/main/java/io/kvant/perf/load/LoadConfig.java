package io.kvant.perf.load;

import java.time.Duration;
import java.util.Optional;

/**
 * How to load a server.
 *
 * @param openLoop open loop (arrivals at {@code rate}) instead of closed loop ({@code concurrency}
 *     users sending back to back)
 * @param concurrency closed loop: users; open loop: cap on requests in flight ({@code <= 0}: none)
 * @param rate open loop: mean requests per second (may be infinite)
 * @param burstiness open loop: gamma shape of inter-arrival times (1 = Poisson)
 * @param requests stop sending after this many requests ({@code <= 0}: no count bound)
 * @param duration stop sending after this long (empty: no time bound); in-flight requests finish
 * @param warmup requests sent (closed loop, same concurrency) before the measured run, not counted
 * @param model model name; empty for the server's default
 * @param temperature sampling temperature
 * @param topP nucleus mass sent with each request (0 or 1: off)
 * @param topK most likely tokens kept, sent with each request (0: off)
 * @param seed seed of prompts, lengths and arrivals
 * @param deadline per-request deadline
 */
public record LoadConfig(
    boolean openLoop,
    int concurrency,
    double rate,
    double burstiness,
    int requests,
    Optional<Duration> duration,
    int warmup,
    String model,
    float temperature,
    float topP,
    int topK,
    long seed,
    Duration deadline) {

  /**
   * Checks the bounds.
   *
   * @throws IllegalArgumentException if neither bound is set, or a value is out of range
   */
  public LoadConfig {
    if (requests <= 0 && duration.isEmpty()) {
      throw new IllegalArgumentException("give --requests and/or --duration");
    }
    if (!openLoop && concurrency < 1) {
      throw new IllegalArgumentException("--concurrency must be >= 1, got " + concurrency);
    }
    if (openLoop && !(rate > 0)) {
      throw new IllegalArgumentException("--rate must be > 0 (or inf), got " + rate);
    }
    if (warmup < 0) {
      throw new IllegalArgumentException("--warmup must be >= 0");
    }
    if (!(topP >= 0 && topP <= 1)) {
      throw new IllegalArgumentException("--top-p must be in [0, 1], got " + topP);
    }
    if (topK < 0) {
      throw new IllegalArgumentException("--top-k must be >= 0, got " + topK);
    }
  }

  /** This config at another concurrency (a sweep point). */
  public LoadConfig withConcurrency(int c) {
    return new LoadConfig(
        openLoop,
        c,
        rate,
        burstiness,
        requests,
        duration,
        warmup,
        model,
        temperature,
        topP,
        topK,
        seed,
        deadline);
  }
}
