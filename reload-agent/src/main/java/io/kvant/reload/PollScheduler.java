package io.kvant.reload;

import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Runs the agent's polls. Production uses {@link #singleThread}; tests pass one that runs nothing
 * and call the agent's {@code pollOnce} themselves, so they control when (and with the agent's
 * injected clock, at what time) each poll happens.
 */
public interface PollScheduler extends AutoCloseable {
  /** Runs {@code task} every {@code period}, first after one period. */
  void every(Duration period, Runnable task);

  /** Runs {@code task} soon, on the same thread as the periodic task. */
  void soon(Runnable task);

  /** Stops running tasks and interrupts one in progress. */
  @Override
  void close();

  /** One daemon thread; a task that throws is logged by the caller and does not stop the next. */
  static PollScheduler singleThread(String name) {
    ScheduledExecutorService ex =
        Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, name);
              t.setDaemon(true);
              return t;
            });
    return new PollScheduler() {
      @Override
      public void every(Duration period, Runnable task) {
        long ms = Math.max(1, period.toMillis());
        // A periodic task that throws is never run again by the executor: whatever escapes the
        // task (an Error; callers catch their exceptions) is logged here so that polling goes on.
        ex.scheduleWithFixedDelay(
            () -> {
              try {
                task.run();
              } catch (Throwable t) {
                Logger.getLogger(PollScheduler.class.getName())
                    .log(Level.SEVERE, name + ": a poll failed; polling goes on", t);
              }
            },
            ms,
            ms,
            TimeUnit.MILLISECONDS);
      }

      @Override
      public void soon(Runnable task) {
        if (!ex.isShutdown()) {
          ex.execute(task);
        }
      }

      @Override
      public void close() {
        ex.shutdownNow();
        try {
          ex.awaitTermination(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }
    };
  }

  /** Runs nothing by itself (tests drive the agent). */
  static PollScheduler manual() {
    return new PollScheduler() {
      @Override
      public void every(Duration period, Runnable task) {}

      @Override
      public void soon(Runnable task) {}

      @Override
      public void close() {}
    };
  }
}
