package io.kvant.engine.tensor;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import java.util.function.IntConsumer;

/**
 * Runs row-parallel work (matmuls, per-head loops) on a fixed team of threads.
 *
 * <p>Design note: a persistent team, not a task pool. {@code threads - 1} daemon workers live as
 * long as the pool; a call publishes its body and range, bumps a generation counter, runs the first
 * range on the calling thread and waits until every worker has done its range. Between calls
 * workers spin on the counter for a short while ({@link #SPIN_NANOS}) and then park, so the many
 * back-to-back operations of one forward pass hand off in well under a microsecond with no
 * allocation, while an idle pool costs nothing. Work over {@code [0, n)} is cut into at most {@code
 * threads} contiguous ranges (the same split as before, so results stay bitwise equal to a
 * single-threaded run: {@link Tensor#matmul} computes each output element independently of the row
 * range). With one thread everything runs inline.
 *
 * <p>Thread-safe: the team serves one call at a time; a call made while it is busy (from another
 * thread, or from inside a body) runs entirely on its calling thread.
 */
public final class ComputePool implements AutoCloseable {
  /** Row ranges given to a matmul task are multiples of this (except the last). */
  public static final int ROW_GRAIN = 16;

  /**
   * Multiply-adds (or comparable float operations) below which a call runs on the calling thread
   * alone.
   */
  public static final long MIN_PARALLEL_WORK = 1L << 18;

  /** How long an idle worker spins for the next call before parking. */
  static final long SPIN_NANOS = 200_000;

  /** A body run over a contiguous index range {@code [start, end)}. */
  @FunctionalInterface
  public interface RangeBody {
    void run(int start, int end);
  }

  private final int threads;
  private final Worker[] workers;
  private final AtomicBoolean busy = new AtomicBoolean();
  private final AtomicInteger pending = new AtomicInteger();
  private final AtomicReference<Throwable> failure = new AtomicReference<>();
  private volatile int generation;
  private volatile boolean closed;
  // The published call; written before the generation bump, read after it.
  private RangeBody body;
  private int n;
  private int chunk;
  private int parts;

  /**
   * @param threads total threads doing work, including the caller; at least 1
   */
  public ComputePool(int threads) {
    if (threads < 1) {
      throw new IllegalArgumentException("threads must be >= 1, got " + threads);
    }
    this.threads = threads;
    this.workers = new Worker[threads - 1];
    for (int i = 0; i < workers.length; i++) {
      workers[i] = new Worker(i + 1);
      workers[i].thread.start();
    }
  }

  /** Number of threads doing work, including the caller. */
  public int threads() {
    return threads;
  }

  /** {@code w.matmul(x, batch, out)} with rows split across the threads. */
  public void matmul(Tensor w, float[] x, int batch, float[] out) {
    // Below this much work, handing ranges to other threads costs more than it saves (and a
    // descheduled worker stalls the whole step): a small model's 256x256 projection at batch 1 is
    // about 10 microseconds of work. Results are the same either way (per-element order is fixed).
    if ((long) w.rows() * w.cols() * batch < MIN_PARALLEL_WORK) {
      w.matmul(x, batch, out, 0, w.rows());
      return;
    }
    parallelRanges(w.rows(), ROW_GRAIN, (start, end) -> w.matmul(x, batch, out, start, end));
  }

  /** Calls {@code body.accept(i)} for every {@code i} in {@code [0, n)}, in parallel. */
  public void parallelFor(int n, IntConsumer body) {
    parallelRanges(
        n,
        1,
        (start, end) -> {
          for (int i = start; i < end; i++) {
            body.accept(i);
          }
        });
  }

  /**
   * Runs {@code body} over contiguous ranges covering {@code [0, n)}, at most one per thread, each
   * range's length a multiple of {@code grain} except the last. Returns when all are done; the
   * first exception thrown by a range is rethrown.
   */
  public void parallelRanges(int n, int grain, RangeBody body) {
    if (n < 0 || grain < 1) {
      throw new IllegalArgumentException("n=" + n + " grain=" + grain);
    }
    int units = (int) (((long) n + grain - 1) / grain);
    int parts = Math.min(threads, units);
    if (parts <= 1 || closed || !busy.compareAndSet(false, true)) {
      if (n > 0) {
        body.run(0, n);
      }
      return;
    }
    try {
      int chunk = (units + parts - 1) / parts * grain;
      this.body = body;
      this.n = n;
      this.chunk = chunk;
      this.parts = parts;
      // Every worker acknowledges every call, even without a range: a worker still reading this
      // call's fields must not see the next call's.
      pending.set(workers.length);
      generation = generation + 1; // publishes the fields above to the workers
      for (Worker w : workers) {
        if (w.parked) {
          LockSupport.unpark(w.thread);
        }
      }
      Throwable first = null;
      try {
        body.run(0, Math.min(n, chunk));
      } catch (Throwable t) {
        first = t;
      }
      awaitWorkers();
      this.body = null;
      Throwable other = failure.getAndSet(null);
      rethrow(first != null ? first : other);
    } finally {
      busy.set(false);
    }
  }

  private void awaitWorkers() {
    int spins = 0;
    while (pending.get() != 0) {
      if (++spins < 4096) {
        Thread.onSpinWait();
      } else {
        // A descheduled worker (a loaded machine): give the core away instead of burning it.
        Thread.yield();
      }
    }
  }

  private static void rethrow(Throwable failure) {
    if (failure instanceof RuntimeException e) {
      throw e;
    } else if (failure instanceof Error e) {
      throw e;
    } else if (failure != null) {
      throw new RuntimeException(failure);
    }
  }

  @Override
  public void close() {
    closed = true;
    generation = generation + 1;
    for (Worker w : workers) {
      LockSupport.unpark(w.thread);
    }
  }

  /** One team member: waits for a new generation, runs its range of the published call. */
  private final class Worker implements Runnable {
    private static final AtomicInteger IDS = new AtomicInteger();
    final int part;
    final Thread thread;
    volatile boolean parked;

    Worker(int part) {
      this.part = part;
      this.thread = new Thread(this, "kvant-compute-" + IDS.incrementAndGet());
      thread.setDaemon(true);
    }

    @Override
    public void run() {
      int seen =
          0; // the generation at construction: a call published before this thread runs is seen
      while (true) {
        int g = awaitGeneration(seen);
        if (closed) {
          return;
        }
        seen = g;
        try {
          int start = part * chunk;
          int end = Math.min(n, start + chunk);
          if (part < parts && start < end) {
            body.run(start, end);
          }
        } catch (Throwable t) {
          failure.compareAndSet(null, t);
        } finally {
          pending.decrementAndGet();
        }
      }
    }

    private int awaitGeneration(int seen) {
      long spinStart = System.nanoTime();
      int spins = 0;
      while (true) {
        int g = generation;
        if (g != seen) {
          return g;
        }
        if ((++spins & 255) != 0 || System.nanoTime() - spinStart < SPIN_NANOS) {
          Thread.onSpinWait();
          continue;
        }
        // Park; the caller unparks every worker it sees parked after bumping the generation, and
        // the re-check below closes the window between the flag and the park.
        parked = true;
        if (generation == seen) {
          LockSupport.park(this);
        }
        parked = false;
        spinStart = System.nanoTime();
      }
    }
  }
}
