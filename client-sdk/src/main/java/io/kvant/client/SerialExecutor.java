package io.kvant.client;

import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Runs tasks one at a time, in submission order, in the thread of whichever submitter finds it
 * idle: what Reactive Streams §1.3 needs (signals to a subscriber never overlap) without a thread
 * of its own. A task submitted from inside a running task runs after it, so a subscriber calling
 * {@code request} from {@code onNext} never recurses (§3.3).
 */
final class SerialExecutor implements Executor {
  private final Queue<Runnable> tasks = new ConcurrentLinkedQueue<>();
  private final AtomicInteger pending = new AtomicInteger();

  @Override
  public void execute(Runnable task) {
    tasks.add(task);
    if (pending.getAndIncrement() == 0) {
      drain();
    }
  }

  private void drain() {
    int missed = 1;
    do {
      Runnable task;
      while ((task = tasks.poll()) != null) {
        try {
          task.run();
        } catch (RuntimeException | Error e) {
          // A task's failure must not wedge the tasks queued behind it; the tasks handle their
          // own errors, so this only guards against bugs.
        }
      }
      missed = pending.addAndGet(-missed);
    } while (missed != 0);
  }
}
