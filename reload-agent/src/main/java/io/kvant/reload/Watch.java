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

  /** The previous version's weights, for the shadow check; null when it is not known. */
  final ServingView previousView;

  private final AtomicLong requests = new AtomicLong();
  private final AtomicLong errors = new AtomicLong();
  private final AtomicLong samples = new AtomicLong();
  private final QualityGate.Drift drift = new QualityGate.Drift();

  Watch(String version, String previous, Instant until) {
    this(version, previous, until, null);
  }

  Watch(String version, String previous, Instant until, ServingView previousView) {
    this.version = version;
    this.previous = previous;
    this.until = until;
    this.previousView = previousView;
  }

  /** Whether this live request is one of every {@code every} to shadow (0: none). */
  boolean sampleNext(int every) {
    return every > 0 && samples.getAndIncrement() % every == 0;
  }

  /** Adds one shadowed request's comparison (new version's logits against the previous one's). */
  synchronized void addShadow(float[] previousLogits, float[] newLogits, int n, int vocab) {
    drift.add(previousLogits, newLogits, n, vocab);
  }

  synchronized long shadowPositions() {
    return drift.positions;
  }

  synchronized double shadowTop1() {
    return drift.top1();
  }

  synchronized double shadowMeanKl() {
    return drift.meanKl();
  }

  /** Whether the shadowed requests show drift beyond the thresholds (or non-finite logits). */
  synchronized boolean drifted(GateSettings g) {
    if (!drift.finite) {
      return true;
    }
    return drift.positions >= g.shadowMinPositions()
        && (drift.top1() < g.shadowMinTop1() || drift.meanKl() > g.shadowMaxKl());
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
