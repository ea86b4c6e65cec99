package io.kvant.reload;

import java.time.Instant;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The watch window of a freshly swapped version: until {@link #until} the previous version stays in
 * memory, and the outcomes of requests served by the new version are counted.
 */
final class Watch {
  final String version;
  final String previous;
  final Instant until;
  private final AtomicLong requests = new AtomicLong();
  private final AtomicLong errors = new AtomicLong();

  Watch(String version, String previous, Instant until) {
    this.version = version;
    this.previous = previous;
    this.until = until;
  }

  void record(boolean error) {
    requests.incrementAndGet();
    if (error) {
      errors.incrementAndGet();
    }
  }

  long requests() {
    return requests.get();
  }

  long errors() {
    return errors.get();
  }

  /** Whether at least {@code minRequests} were seen and their error rate is above {@code rate}. */
  boolean tripped(double rate, int minRequests) {
    long n = requests.get();
    return n >= minRequests && n > 0 && (double) errors.get() / n > rate;
  }
}
