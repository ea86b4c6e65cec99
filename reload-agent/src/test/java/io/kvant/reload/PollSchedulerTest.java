package io.kvant.reload;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class PollSchedulerTest {
  /**
   * A periodic task that throws is not run again by a plain scheduled executor; the agent's polls
   * must go on after one that failed, even with an Error (an out-of-heap while staging a version).
   */
  @Test
  void aPollThatThrowsAnErrorDoesNotStopTheNext() throws InterruptedException {
    AtomicInteger runs = new AtomicInteger();
    CountDownLatch third = new CountDownLatch(3);
    try (PollScheduler s = PollScheduler.singleThread("poll-test")) {
      s.every(
          Duration.ofMillis(5),
          () -> {
            runs.incrementAndGet();
            third.countDown();
            if (runs.get() == 1) {
              throw new OutOfMemoryError("test: the first poll fails");
            }
            if (runs.get() == 2) {
              throw new IllegalStateException("test: the second too");
            }
          });
      assertThat(third.await(10, TimeUnit.SECONDS)).as("runs: %s", runs).isTrue();
    }
    assertThat(runs.get()).isGreaterThanOrEqualTo(3);
  }
}
