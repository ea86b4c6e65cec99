package io.kvant.client;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.grpc.Deadline;
import io.grpc.Status;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The backoff arithmetic, on a fake clock and a scripted random source. */
class RetryPolicyTest {
  private static final long MS = 1_000_000;

  /** A clock that only moves when told to. */
  private static final class FakeTicker extends Deadline.Ticker {
    long now;

    @Override
    public long nanoTime() {
      return now;
    }
  }

  private final RetryPolicy policy =
      RetryPolicy.builder()
          .maxAttempts(5)
          .initialBackoff(Duration.ofMillis(100))
          .maxBackoff(Duration.ofMillis(300))
          .multiplier(2)
          .build();

  @Test
  void capsGrowExponentiallyUpToTheMaximum() {
    // random -> 1 gives (just under) each cap: 100, 200, 300 (capped), 300 ms.
    double almostOne = Math.nextDown(1.0);
    long[] caps = new long[4];
    for (int attempt = 1; attempt <= 4; attempt++) {
      caps[attempt - 1] =
          policy.delayBeforeNextAttempt(attempt, Status.Code.UNAVAILABLE, null, () -> almostOne);
    }
    assertThat(caps[0]).isBetween(99 * MS, 100 * MS);
    assertThat(caps[1]).isBetween(199 * MS, 200 * MS);
    assertThat(caps[2]).isBetween(299 * MS, 300 * MS);
    assertThat(caps[3]).isBetween(299 * MS, 300 * MS);
  }

  @Test
  void fullJitterScalesTheWholeCap() {
    assertThat(policy.delayBeforeNextAttempt(2, Status.Code.UNAVAILABLE, null, () -> 0.0)).isZero();
    assertThat(policy.delayBeforeNextAttempt(2, Status.Code.RESOURCE_EXHAUSTED, null, () -> 0.25))
        .isEqualTo(50 * MS);
  }

  @Test
  void stopsAtMaxAttemptsAndOnOtherCodes() {
    assertThat(policy.delayBeforeNextAttempt(4, Status.Code.UNAVAILABLE, null, () -> 0.5))
        .isPositive();
    assertThat(policy.delayBeforeNextAttempt(5, Status.Code.UNAVAILABLE, null, () -> 0.5))
        .isEqualTo(-1);
    for (Status.Code code :
        new Status.Code[] {
          Status.Code.INVALID_ARGUMENT,
          Status.Code.DEADLINE_EXCEEDED,
          Status.Code.INTERNAL,
          Status.Code.CANCELLED
        }) {
      assertThat(policy.delayBeforeNextAttempt(1, code, null, () -> 0.5)).isEqualTo(-1);
    }
    assertThat(RetryPolicy.none().delayBeforeNextAttempt(1, Status.Code.UNAVAILABLE, null, () -> 0))
        .isEqualTo(-1);
  }

  @Test
  void neverWaitsPastTheDeadline() {
    FakeTicker clock = new FakeTicker();
    Deadline deadline = Deadline.after(120, TimeUnit.MILLISECONDS, clock);
    // Cap 200 ms at attempt 2; a 100 ms wait fits in the 120 ms left, a 150 ms one does not.
    assertThat(policy.delayBeforeNextAttempt(2, Status.Code.UNAVAILABLE, deadline, () -> 0.5))
        .isEqualTo(100 * MS);
    assertThat(policy.delayBeforeNextAttempt(2, Status.Code.UNAVAILABLE, deadline, () -> 0.75))
        .isEqualTo(-1);
    clock.now += 110 * MS;
    assertThat(policy.delayBeforeNextAttempt(1, Status.Code.UNAVAILABLE, deadline, () -> 0.05))
        .isEqualTo(5 * MS);
    assertThat(policy.delayBeforeNextAttempt(1, Status.Code.UNAVAILABLE, deadline, () -> 0.2))
        .isEqualTo(-1);
  }

  @Test
  void builderRejectsNonsense() {
    assertThatThrownBy(() -> RetryPolicy.builder().maxAttempts(0))
        .hasMessage("maxAttempts: must be >= 1, got 0");
    assertThatThrownBy(() -> RetryPolicy.builder().initialBackoff(Duration.ZERO))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> RetryPolicy.builder().multiplier(0.5))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(
            () ->
                RetryPolicy.builder()
                    .initialBackoff(Duration.ofSeconds(2))
                    .maxBackoff(Duration.ofSeconds(1))
                    .build())
        .isInstanceOf(IllegalArgumentException.class);
    assertThat(RetryPolicy.defaults().maxAttempts()).isEqualTo(4);
  }
}
