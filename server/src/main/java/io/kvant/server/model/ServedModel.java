package io.kvant.server.model;

import io.kvant.server.model.ModelVersion.VersionState;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;

/**
 * A model name clients use, with the version that serves new requests and every older version still
 * held in memory.
 *
 * <p>Design note: admission and swap are the only two operations that touch the serving reference,
 * and both take this object's lock, so a request is always pinned to exactly one version and a
 * version that is being retired cannot gain new requests. The engine loop itself never takes this
 * lock: each request carries its pinned version's engine adapter with it.
 */
public final class ServedModel {
  private final String name;
  private final Map<String, ModelVersion> held = new ConcurrentHashMap<>();
  private final Consumer<ModelVersion> releaser;
  private ModelVersion serving;
  private ModelVersion standby;
  private boolean paused;
  private volatile java.util.function.BiConsumer<String, Boolean> outcomes = (v, e) -> {};
  private volatile java.util.function.BiConsumer<String, int[]> samples;

  /**
   * @param releaser frees a version that is no longer needed (closes its files)
   */
  public ServedModel(String name, ModelVersion first, Consumer<ModelVersion> releaser) {
    this.name = name;
    this.releaser = releaser;
    first.state(VersionState.SERVING);
    this.serving = first;
    held.put(first.id(), first);
  }

  public String name() {
    return name;
  }

  /** The version new requests get. */
  public synchronized ModelVersion serving() {
    return serving;
  }

  /** The rollback target kept in memory, or null. */
  public synchronized ModelVersion standby() {
    return standby;
  }

  /**
   * Pins the serving version for a new request and returns it. While a PAUSE swap is under way this
   * waits until the swap is done (bounded by the swap's own timeout).
   */
  public synchronized ModelVersion pinServing() {
    boolean interrupted = false;
    while (paused) {
      try {
        wait();
      } catch (InterruptedException e) {
        interrupted = true;
      }
    }
    if (interrupted) {
      Thread.currentThread().interrupt();
    }
    serving.pin();
    return serving;
  }

  /** Holds new admissions (PAUSE swap). */
  synchronized void pause() {
    paused = true;
  }

  /** Lets admissions through again. */
  synchronized void resume() {
    paused = false;
    notifyAll();
  }

  /** Waits until no request is pinned to any version, up to {@code timeout}. */
  synchronized boolean awaitNoPins(java.time.Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (pinnedTotal() > 0) {
      long left = deadline - System.nanoTime();
      if (left <= 0) {
        return false;
      }
      try {
        wait(Math.max(1, left / 1_000_000));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return false;
      }
    }
    return true;
  }

  /** Sets who hears request outcomes (the reload agent's error-rate watch). */
  public void onOutcome(java.util.function.BiConsumer<String, Boolean> listener) {
    this.outcomes = listener;
  }

  /** Where finished requests' tokens go (the reload agent's shadow check); none by default. */
  public void onSample(java.util.function.BiConsumer<String, int[]> listener) {
    this.samples = listener;
  }

  /**
   * Offers a finished request's prompt and generated tokens, for the shadow check. Never throws;
   * the listener must not block (the agent copies and queues).
   */
  public void sample(String versionId, int[] prompt, int[] generated) {
    java.util.function.BiConsumer<String, int[]> l = samples;
    if (l == null) {
      return;
    }
    try {
      int[] all = java.util.Arrays.copyOf(prompt, prompt.length + generated.length);
      System.arraycopy(generated, 0, all, prompt.length, generated.length);
      l.accept(versionId, all);
    } catch (RuntimeException ignored) {
      // a listener must not fail a request
    }
  }

  /** Reports that a request served by {@code versionId} ended, failed or not. Never throws. */
  public void outcome(String versionId, boolean error) {
    try {
      outcomes.accept(versionId, error);
    } catch (RuntimeException ignored) {
      // a listener must not fail a request
    }
  }

  /** Ends a request's pin; releases the version if it was draining and this was the last pin. */
  public void unpin(ModelVersion v) {
    boolean release;
    synchronized (this) {
      int left = v.unpin();
      notifyAll();
      release = left == 0 && v.state() == VersionState.DRAINING;
      if (release) {
        held.remove(v.id());
      }
    }
    if (release) {
      releaser.accept(v);
    }
  }

  /**
   * Makes {@code next} the serving version. The old one keeps its pinned requests; it becomes the
   * standby rollback target when {@code keepStandby}, otherwise it drains and is released when its
   * last request ends. A previous standby is released (or drained) first.
   *
   * @return the version that served before
   */
  public ModelVersion swap(ModelVersion next, boolean keepStandby) {
    List<ModelVersion> release = new ArrayList<>();
    ModelVersion previous;
    synchronized (this) {
      previous = serving;
      if (standby != null && standby != next) {
        retire(standby, release);
      }
      standby = null;
      next.state(VersionState.SERVING);
      held.put(next.id(), next);
      serving = next;
      if (keepStandby) {
        previous.state(VersionState.STANDBY);
        standby = previous;
      } else {
        retire(previous, release);
      }
    }
    release.forEach(releaser);
    return previous;
  }

  /** Stops keeping the standby version (its watch window passed); it drains and is released. */
  public void dropStandby() {
    List<ModelVersion> release = new ArrayList<>();
    synchronized (this) {
      if (standby != null) {
        retire(standby, release);
        standby = null;
      }
    }
    release.forEach(releaser);
  }

  private void retire(ModelVersion v, List<ModelVersion> release) {
    v.state(VersionState.DRAINING);
    if (v.pinned() == 0) {
      held.remove(v.id());
      release.add(v);
    }
  }

  /** Every version held, serving first. */
  public synchronized List<ModelVersion> versions() {
    List<ModelVersion> out = new ArrayList<>();
    out.add(serving);
    for (ModelVersion v : held.values()) {
      if (v != serving) {
        out.add(v);
      }
    }
    return out;
  }

  /** Pinned requests across all versions. */
  public int pinnedTotal() {
    return held.values().stream().mapToInt(ModelVersion::pinned).sum();
  }
}
