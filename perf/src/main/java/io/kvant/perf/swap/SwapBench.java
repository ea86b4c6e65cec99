package io.kvant.perf.swap;

import io.kvant.api.v1.SwapPolicy;
import io.kvant.api.v1.SwapResponse;
import io.kvant.client.KvantAdmin;
import io.kvant.client.KvantException;
import io.kvant.perf.load.BenchResult.PhaseStats;
import io.kvant.perf.load.BenchResult.SwapEvent;
import io.kvant.perf.load.BenchResult.SwapPhase;
import io.kvant.perf.load.LatencyStats;
import io.kvant.perf.load.LoadGenerator;
import io.kvant.perf.load.RequestRecord;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;

/**
 * Hot swaps under load: while a {@link LoadGenerator} runs, a thread calls the admin API every
 * {@code every} to swap to the next of {@code targets} (versions of the bucket, or paths on the
 * sidecar's disk, used in turn), and records when each swap started and returned. {@link #phases}
 * then groups the requests by start time into before, during and after each swap.
 *
 * <p>A hot swap is meant to fail no request and to cost little latency; the phases show both.
 */
public final class SwapBench {
  /** Where swaps go: a version id or a path on the sidecar. */
  public enum TargetKind {
    VERSION,
    PATH
  }

  private final KvantAdmin admin;
  private final String model;
  private final TargetKind kind;
  private final List<String> targets;
  private final SwapPolicy policy;
  private final long everyNanos;
  private final int maxSwaps;
  private final LongSupplier nanoTime;
  private final List<SwapEvent> events = new CopyOnWriteArrayList<>();
  private final CountDownLatch loadDone = new CountDownLatch(1);
  private volatile Thread swapper;

  /**
   * @param every time from the start of the measured run to the first swap, and between swaps
   * @param maxSwaps at most this many swaps
   */
  public SwapBench(
      KvantAdmin admin,
      String model,
      TargetKind kind,
      List<String> targets,
      SwapPolicy policy,
      java.time.Duration every,
      int maxSwaps,
      LongSupplier nanoTime) {
    if (targets.isEmpty()) {
      throw new IllegalArgumentException("give --swap-version or --swap-path");
    }
    if (every.isZero() || every.isNegative()) {
      throw new IllegalArgumentException("--swap-every must be positive");
    }
    this.admin = admin;
    this.model = model;
    this.kind = kind;
    this.targets = List.copyOf(targets);
    this.policy = policy;
    this.everyNanos = every.toNanos();
    this.maxSwaps = maxSwaps;
    this.nanoTime = nanoTime;
  }

  /** Runs the load with swaps during it; returns the load's run (swaps in {@link #events()}). */
  public LoadGenerator.Run run(LoadGenerator load, LoadGenerator.Listener progress)
      throws InterruptedException {
    LoadGenerator.Listener listener =
        new LoadGenerator.Listener() {
          @Override
          public void started(long nanos) {
            progress.started(nanos);
            swapper =
                Thread.ofPlatform()
                    .name("kvant-bench-swapper")
                    .daemon()
                    .start(() -> swapLoop(nanos));
          }

          @Override
          public void progress(int done, int failed, double fraction) {
            progress.progress(done, failed, fraction);
          }
        };
    try {
      return load.run(listener);
    } finally {
      loadDone.countDown();
      Thread t = swapper;
      if (t != null) {
        t.join(TimeUnit.MINUTES.toMillis(11)); // an admin call is bounded by its 10 min deadline
      }
    }
  }

  private void swapLoop(long start) {
    for (int i = 0; i < maxSwaps; i++) {
      long due = start + (i + 1) * everyNanos;
      long wait = due - nanoTime.getAsLong();
      try {
        if (wait > 0 && loadDone.await(wait, TimeUnit.NANOSECONDS)) {
          return;
        }
      } catch (InterruptedException e) {
        return;
      }
      if (loadDone.getCount() == 0) {
        return;
      }
      String target = targets.get(i % targets.size());
      long t0 = nanoTime.getAsLong();
      boolean ok;
      String detail;
      try {
        SwapResponse r =
            kind == TargetKind.VERSION
                ? admin.swapToVersion(model, target, policy)
                : admin.swapToPath(model, target, policy);
        ok = true;
        detail = r.getServingVersion();
      } catch (KvantException e) {
        ok = false;
        detail = e.code() + ": " + e.description();
      } catch (RuntimeException e) {
        ok = false;
        detail = e.toString();
      }
      long t1 = nanoTime.getAsLong();
      events.add(new SwapEvent(target, (t0 - start) / 1e6, (t1 - start) / 1e6, ok, detail));
    }
  }

  /** The swaps made so far, in order. */
  public List<SwapEvent> events() {
    return List.copyOf(events);
  }

  /**
   * Groups requests by start time around each swap (see {@link SwapPhase}). A swap's "during" ends
   * at the next swap's start at the latest, and its "after" is the next swap's "before", so every
   * request falls in exactly one during phase or one before/after interval.
   *
   * @param windowMs how long after a swap returns its "during" phase lasts
   */
  public static List<SwapPhase> phases(
      List<RequestRecord> records, List<SwapEvent> swaps, double windowMs) {
    List<SwapPhase> out = new ArrayList<>();
    double beforeFrom = Double.NEGATIVE_INFINITY;
    for (int i = 0; i < swaps.size(); i++) {
      SwapEvent s = swaps.get(i);
      double afterTo = i + 1 < swaps.size() ? swaps.get(i + 1).startMs() : Double.POSITIVE_INFINITY;
      // Clipped at the next swap's start, so that phases never overlap.
      double duringTo = Math.min(s.endMs() + windowMs, afterTo);
      out.add(
          new SwapPhase(
              i,
              phase(records, beforeFrom, s.startMs()),
              phase(records, s.startMs(), duringTo),
              phase(records, duringTo, afterTo)));
      beforeFrom = duringTo;
    }
    return out;
  }

  static PhaseStats phase(List<RequestRecord> records, double fromMs, double toMs) {
    List<RequestRecord> in =
        records.stream().filter(r -> r.startMs() >= fromMs && r.startMs() < toMs).toList();
    List<RequestRecord> ok = in.stream().filter(RequestRecord::ok).toList();
    return new PhaseStats(
        in.size(),
        in.size() - ok.size(),
        LatencyStats.of(
            ok.stream().mapToDouble(RequestRecord::ttftMs).filter(v -> v >= 0).toArray()),
        LatencyStats.of(ok.stream().mapToDouble(RequestRecord::e2eMs).toArray()),
        List.copyOf(
            new TreeSet<>(
                in.stream().map(RequestRecord::modelVersion).filter(v -> !v.isEmpty()).toList())));
  }
}
