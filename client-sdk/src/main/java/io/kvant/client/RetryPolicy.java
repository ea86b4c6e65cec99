package io.kvant.client;

import io.grpc.Deadline;
import io.grpc.Status;
import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.function.DoubleSupplier;

/**
 * How the SDK retries calls that failed with {@code UNAVAILABLE} or {@code RESOURCE_EXHAUSTED}:
 * exponential backoff with full jitter (the wait before retry {@code n} is uniform in {@code [0,
 * min(maxBackoff, initialBackoff * multiplier^(n-1)))}), bounded by {@link #maxAttempts()} and by
 * the call's deadline (no retry is started that could not begin before the deadline).
 *
 * <p>A streaming call is retried only while it has delivered nothing: once a chunk has reached the
 * caller, a failure ends the stream with an exception, so output is never replayed or duplicated.
 * Admin calls that change state ({@code swap}, {@code rollback}) are never retried.
 *
 * <p>Immutable and thread-safe.
 */
public final class RetryPolicy {
  private static final RetryPolicy DEFAULTS = builder().build();
  private static final RetryPolicy NONE = builder().maxAttempts(1).build();

  private final int maxAttempts;
  private final Duration initialBackoff;
  private final Duration maxBackoff;
  private final double multiplier;

  private RetryPolicy(Builder b) {
    this.maxAttempts = b.maxAttempts;
    this.initialBackoff = b.initialBackoff;
    this.maxBackoff = b.maxBackoff;
    this.multiplier = b.multiplier;
  }

  /** 4 attempts, 100 ms initial backoff, 5 s maximum backoff, multiplier 2. */
  public static RetryPolicy defaults() {
    return DEFAULTS;
  }

  /** A single attempt: every failure surfaces at once. */
  public static RetryPolicy none() {
    return NONE;
  }

  /** A builder starting from {@link #defaults()}. */
  public static Builder builder() {
    return new Builder();
  }

  /** Attempts in all, the first one included; at least 1. */
  public int maxAttempts() {
    return maxAttempts;
  }

  /** The cap of the jittered wait before the first retry. */
  public Duration initialBackoff() {
    return initialBackoff;
  }

  /** The largest cap of any jittered wait. */
  public Duration maxBackoff() {
    return maxBackoff;
  }

  /** Growth factor of the cap from one retry to the next. */
  public double multiplier() {
    return multiplier;
  }

  static boolean retryable(Status.Code code) {
    return code == Status.Code.UNAVAILABLE || code == Status.Code.RESOURCE_EXHAUSTED;
  }

  /**
   * The wait before the next attempt, in nanoseconds, or -1 to give up.
   *
   * @param attemptsMade attempts made so far (at least 1)
   * @param code the status the last attempt failed with
   * @param deadline the call's deadline, or null for none
   * @param random uniform in [0, 1): the jitter
   */
  long delayBeforeNextAttempt(
      int attemptsMade, Status.Code code, Deadline deadline, DoubleSupplier random) {
    if (!retryable(code) || attemptsMade >= maxAttempts) {
      return -1;
    }
    double cap = initialBackoff.toNanos() * Math.pow(multiplier, attemptsMade - 1);
    cap = Math.min(cap, (double) maxBackoff.toNanos());
    long delay = (long) (random.getAsDouble() * cap);
    if (deadline != null && deadline.timeRemaining(TimeUnit.NANOSECONDS) <= delay) {
      // The next attempt could not even start before the deadline: surface the last error now.
      return -1;
    }
    return delay;
  }

  @Override
  public String toString() {
    return "RetryPolicy{maxAttempts="
        + maxAttempts
        + ", initialBackoff="
        + initialBackoff
        + ", maxBackoff="
        + maxBackoff
        + ", multiplier="
        + multiplier
        + "}";
  }

  /** Builds a {@link RetryPolicy}; not thread-safe. */
  public static final class Builder {
    private int maxAttempts = 4;
    private Duration initialBackoff = Duration.ofMillis(100);
    private Duration maxBackoff = Duration.ofSeconds(5);
    private double multiplier = 2;

    private Builder() {}

    /**
     * Attempts in all, the first included; default 4.
     *
     * @throws IllegalArgumentException if below 1
     */
    public Builder maxAttempts(int maxAttempts) {
      if (maxAttempts < 1) {
        throw new IllegalArgumentException("maxAttempts: must be >= 1, got " + maxAttempts);
      }
      this.maxAttempts = maxAttempts;
      return this;
    }

    /**
     * Cap of the wait before the first retry; default 100 ms.
     *
     * @throws IllegalArgumentException if not positive
     */
    public Builder initialBackoff(Duration initialBackoff) {
      this.initialBackoff = positive("initialBackoff", initialBackoff);
      return this;
    }

    /**
     * Largest cap of any wait; default 5 s.
     *
     * @throws IllegalArgumentException if not positive
     */
    public Builder maxBackoff(Duration maxBackoff) {
      this.maxBackoff = positive("maxBackoff", maxBackoff);
      return this;
    }

    /**
     * Growth factor of the cap per retry; default 2.
     *
     * @throws IllegalArgumentException if below 1 or not finite
     */
    public Builder multiplier(double multiplier) {
      if (!(multiplier >= 1) || Double.isInfinite(multiplier)) {
        throw new IllegalArgumentException("multiplier: must be >= 1, got " + multiplier);
      }
      this.multiplier = multiplier;
      return this;
    }

    /**
     * Builds the policy.
     *
     * @throws IllegalArgumentException if maxBackoff is below initialBackoff
     */
    public RetryPolicy build() {
      if (maxBackoff.compareTo(initialBackoff) < 0) {
        throw new IllegalArgumentException(
            "maxBackoff: must be >= initialBackoff " + initialBackoff + ", got " + maxBackoff);
      }
      return new RetryPolicy(this);
    }

    private static Duration positive(String name, Duration d) {
      Objects.requireNonNull(d, name);
      if (d.isNegative() || d.isZero()) {
        throw new IllegalArgumentException(name + ": must be positive, got " + d);
      }
      return d;
    }
  }
}
