package io.kvant.server.model;

import io.kvant.api.v1.ModelEvent.Kind;
import io.kvant.engine.kv.KvGeometry;
import io.kvant.engine.sched.EngineLoop;
import io.kvant.reload.SwapMode;
import java.io.IOException;
import java.lang.System.Logger;
import java.lang.System.Logger.Level;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.Map;

/**
 * Swaps the serving version of a model inside the running server, under one of three policies.
 *
 * <p>Design note: the engine loop pins each request to the version that served at its admission, so
 * a DRAIN swap is just a change of the serving reference: in-flight requests finish on their
 * version and new ones get the new version at once; nothing waits. PAUSE holds admission until the
 * in-flight requests of the model have finished, then swaps, so no two versions ever run at once.
 * IMMEDIATE asks the engine loop to move every request that has not started computing to the new
 * version at the next step boundary; requests already computing finish on theirs, so a response is
 * always made by one version. The previous version is kept as the rollback target; {@link
 * #rollback} swaps back to it (DRAIN). Only one swap runs at a time.
 */
public final class SwapCoordinator {
  private static final Logger LOG = System.getLogger("io.kvant.server.model.Swap");

  private final ModelRegistry models;
  private final EngineLoop loop;
  private final EventBus events;
  private final Clock clock;
  private final Duration pauseTimeout;

  public SwapCoordinator(
      ModelRegistry models, EngineLoop loop, EventBus events, Clock clock, Duration pauseTimeout) {
    this.models = models;
    this.loop = loop;
    this.events = events;
    this.clock = clock;
    this.pauseTimeout = pauseTimeout;
  }

  /** Loads {@code path} and swaps to it. */
  public SwapResult swapToPath(String modelName, Path path, SwapMode policy, VersionLoader loader)
      throws SwapException {
    ServedModel model = model(modelName);
    long start = clock.millis();
    ModelVersion next;
    try {
      next = loader.load(path);
    } catch (IOException | RuntimeException e) {
      events.publish(
          Kind.REJECTED, model.name(), "", "cannot load " + path + ": " + e.getMessage(), Map.of());
      throw new SwapException("cannot load " + path + ": " + e.getMessage(), e);
    }
    events.publish(Kind.STAGED, model.name(), next.id(), "loaded from " + path, Map.of());
    return swap(model, next, policy, start, 0);
  }

  /**
   * Swaps {@code model} to an already loaded and checked version.
   *
   * @param startMillis when the swap began (for its duration)
   * @param recalibrated tensors re-quantized for this version
   */
  public synchronized SwapResult swap(
      ServedModel model, ModelVersion next, SwapMode policy, long startMillis, int recalibrated)
      throws SwapException {
    ModelVersion current = model.serving();
    if (current.id().equals(next.id())) {
      throw new SwapException("version " + next.id() + " is already serving");
    }
    KvGeometry a = current.engine().kvGeometry();
    KvGeometry b = next.engine().kvGeometry();
    if (!a.equals(b)) {
      throw new SwapException(
          "version " + next.id() + " has KV shape " + b + " but the serving one has " + a);
    }
    ModelVersion previous;
    switch (policy) {
      case DRAIN -> previous = model.swap(next, true);
      case IMMEDIATE -> {
        previous = model.swap(next, true);
        loop.migrate(previous.engine(), next.engine());
      }
      case PAUSE -> {
        model.pause();
        try {
          if (!model.awaitNoPins(pauseTimeout)) {
            throw new SwapException(
                "PAUSE swap gave up: requests still in flight after " + pauseTimeout);
          }
          previous = model.swap(next, true);
        } finally {
          model.resume();
        }
      }
      default -> throw new IllegalArgumentException("policy " + policy);
    }
    long took = clock.millis() - startMillis;
    events.publish(
        Kind.SWAPPED,
        model.name(),
        next.id(),
        policy + " swap from " + previous.id(),
        Map.of(
            "previous", previous.id(),
            "policy", policy.name(),
            "duration_ms", Long.toString(took),
            "recalibrated_tensors", Integer.toString(recalibrated)));
    LOG.log(
        Level.INFO,
        "model={0} swapped {1} -> {2} policy={3} in {4} ms",
        model.name(),
        previous.id(),
        next.id(),
        policy,
        took);
    return new SwapResult(next.id(), previous.id(), took, recalibrated);
  }

  /** Swaps back to the standby (previous) version. */
  public synchronized SwapResult rollback(String modelName) throws SwapException {
    ServedModel model = model(modelName);
    ModelVersion standby = model.standby();
    if (standby == null) {
      throw new SwapException("model " + model.name() + " has no previous version in memory");
    }
    long start = clock.millis();
    ModelVersion from = model.serving();
    model.swap(standby, false);
    long took = clock.millis() - start;
    events.publish(
        Kind.ROLLED_BACK,
        model.name(),
        standby.id(),
        "rolled back from " + from.id(),
        Map.of("previous", from.id(), "duration_ms", Long.toString(took)));
    return new SwapResult(standby.id(), from.id(), took, 0);
  }

  private ServedModel model(String name) throws SwapException {
    return models
        .find(name)
        .orElseThrow(() -> new SwapException("no model named '" + name + "' is served"));
  }
}
