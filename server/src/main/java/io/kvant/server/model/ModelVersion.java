package io.kvant.server.model;

import io.kvant.engine.model.Model;
import io.kvant.engine.sched.TransformerModel;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * One version of a served model held in memory: its weights, its engine adapter, and how many
 * requests are pinned to it.
 *
 * <p>Contract: a request pins the version that is serving when it is admitted ({@link #pin}) and
 * unpins it when it ends; it never sees another version's weights. A version that stopped serving
 * is released (its mapped files closed, its unique tensors freed) by its owner once it is neither
 * pinned nor kept as a rollback target. Thread-safe.
 */
public final class ModelVersion {
  private final String id;
  private final Model model;
  private final TransformerModel engine;
  private final String recipe;
  private final String parent;
  private final String digest;
  private final AtomicInteger pinned = new AtomicInteger();
  private volatile VersionState state;

  /** Lifecycle states, as in {@code kvant.v1.VersionState}. */
  public enum VersionState {
    STAGING,
    SERVING,
    DRAINING,
    STANDBY
  }

  public ModelVersion(
      String id,
      Model model,
      TransformerModel engine,
      String recipe,
      String parent,
      String digest) {
    this.id = id;
    this.model = model;
    this.engine = engine;
    this.recipe = recipe;
    this.parent = parent;
    this.digest = digest;
    this.state = VersionState.STAGING;
  }

  public String id() {
    return id;
  }

  public Model model() {
    return model;
  }

  /** The adapter the engine loop runs requests of this version through. */
  public TransformerModel engine() {
    return engine;
  }

  public String recipe() {
    return recipe;
  }

  /** Parent version id for a delta, empty for a full version. */
  public String parent() {
    return parent;
  }

  /** Content digest (sha256 of the manifest or of the file identity), hex. */
  public String digest() {
    return digest;
  }

  public VersionState state() {
    return state;
  }

  void state(VersionState s) {
    this.state = s;
  }

  /** Requests pinned to this version now. */
  public int pinned() {
    return pinned.get();
  }

  void pin() {
    pinned.incrementAndGet();
  }

  /** Returns the pinned count after unpinning. */
  int unpin() {
    int left = pinned.decrementAndGet();
    if (left < 0) {
      throw new IllegalStateException("version " + id + " unpinned more often than pinned");
    }
    return left;
  }
}
