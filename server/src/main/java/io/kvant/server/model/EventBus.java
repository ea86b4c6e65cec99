package io.kvant.server.model;

import io.kvant.api.v1.ModelEvent;
import java.time.Clock;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;

/**
 * Reload and swap events: kept in a ring of the most recent {@value #RECENT} for late watchers, and
 * pushed to every live watcher. Publishing never blocks; a watcher must not block either.
 */
public final class EventBus {
  static final int RECENT = 256;

  private final Clock clock;
  private final ArrayDeque<ModelEvent> recent = new ArrayDeque<>();
  private final List<Consumer<ModelEvent>> watchers = new CopyOnWriteArrayList<>();
  private final List<Consumer<ModelEvent>> listeners = new CopyOnWriteArrayList<>();

  public EventBus(Clock clock) {
    this.clock = clock;
  }

  /** Publishes an event stamped with the current time. */
  public ModelEvent publish(
      ModelEvent.Kind kind,
      String model,
      String version,
      String message,
      Map<String, String> attrs) {
    ModelEvent e =
        ModelEvent.newBuilder()
            .setKind(kind)
            .setModel(model)
            .setVersion(version == null ? "" : version)
            .setMessage(message == null ? "" : message)
            .setTimeUnixMs(clock.millis())
            .putAllAttributes(attrs)
            .build();
    synchronized (recent) {
      recent.addLast(e);
      if (recent.size() > RECENT) {
        recent.removeFirst();
      }
    }
    for (Consumer<ModelEvent> l : listeners) {
      l.accept(e);
    }
    for (Consumer<ModelEvent> w : watchers) {
      w.accept(e);
    }
    return e;
  }

  /** Adds a permanent listener (metrics, logs). */
  public void listen(Consumer<ModelEvent> listener) {
    listeners.add(listener);
  }

  /**
   * Subscribes a watcher: it first receives the recent events, then live ones.
   *
   * @return a handle that unsubscribes
   */
  public Runnable watch(Consumer<ModelEvent> watcher) {
    List<ModelEvent> backlog;
    synchronized (recent) {
      backlog = new ArrayList<>(recent);
      watchers.add(watcher);
    }
    backlog.forEach(watcher);
    return () -> watchers.remove(watcher);
  }

  /** The recent events, oldest first. */
  public List<ModelEvent> recent() {
    synchronized (recent) {
      return List.copyOf(recent);
    }
  }
}
