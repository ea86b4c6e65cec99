package io.kvant.engine.tensor;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import java.util.function.IntConsumer;

/**
 * Runs row-parallel work (matmuls, per-head loops) on a fixed team of threads.
 *
 * <p>Design note: a persistent team, not a task pool. {@code threads - 1} daemon workers live as
 * long as the pool; a call publishes a task (its body and range, cut into chunks), runs chunks on
 * the calling thread and returns when every chunk is done. Chunks are claimed from a shared counter
 * by whoever is free, the caller included: a worker that is descheduled (a loaded machine: the load
 * generator, the gRPC threads and the JIT share the same cores) or still waking from a park costs
 * the call only the chunk it holds, not its whole share, and the caller never waits for a worker
 * that has not started. Between calls workers spin on the published task for a short while ({@link
 * #SPIN_NANOS}) and then park, so the many back-to-back operations of one forward pass hand off in
 * well under a microsecond with no lock, while an idle pool costs nothing. Work over {@code [0, n)}
 * is cut into at most {@link #chunksPerThread} chunks per thread, for at most as many threads as
 * the call's stated work keeps busy ({@link #MIN_WORK_PER_THREAD}; the workers past that count skip
 * it); results stay bitwise equal to a single-threaded run, since {@link Tensor#matmul} computes
 * each output element independently of the row range. With one thread everything runs inline.
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

  /**
   * Work (in {@link #MIN_PARALLEL_WORK}'s units) each thread of a call is given at least, where the
   * caller states the work ({@link #parallelRanges(int, int, long, RangeBody)}): a thread that
   * joins a call costs the call about a microsecond on a 16-core host (claims and the done count on
   * shared cache lines, perf/RESULTS.md session 23), so a short call is shared among fewer.
   */
  public static final long MIN_WORK_PER_THREAD = 1L << 15;

  /** How long an idle worker spins for the next call before parking. */
  static final long SPIN_NANOS = 200_000;

  /**
   * Chunks a call is cut into per thread of a team of {@code threads}: enough to even out a late or
   * slow thread. Two in a team of two, where more chunks cost more (claims, and shorter runs of
   * panels for the kernels) than they even out: SmolLM2-shape decode at two threads ran 1.10x
   * (Q4_0) and 1.14x (Q8_0) faster with two than with four, medians of 14 and 11 alternated pairs
   * (perf/RESULTS.md, session 37; the 1B shape within the machine's drift). Four in larger teams,
   * where two was not measured.
   */
  static int chunksPerThread(int threads) {
    return threads <= 2 ? 2 : 4;
  }

  /** A body run over a contiguous index range {@code [start, end)}. */
  @FunctionalInterface
  public interface RangeBody {
    void run(int start, int end);
  }

  private final int threads;
  private final Worker[] workers;
  private final AtomicBoolean busy = new AtomicBoolean();
  // The call being served (or the last one); workers spin on it changing.
  private volatile Task task;
  private volatile boolean closed;

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
      workers[i] = new Worker(i);
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
    parallelRanges(
        w.rows(),
        ROW_GRAIN,
        (long) w.rows() * w.cols() * batch,
        (start, end) -> w.matmul(x, batch, out, start, end));
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
   * Runs {@code body} over disjoint contiguous ranges covering {@code [0, n)}, each range's start a
   * multiple of {@code grain} and its length too except for the last; ranges may run on any thread,
   * in any order. Returns when all are done; the first exception thrown by a range is rethrown.
   */
  public void parallelRanges(int n, int grain, RangeBody body) {
    parallelRanges(n, grain, Long.MAX_VALUE, body);
  }

  /**
   * {@link #parallelRanges(int, int, RangeBody)} for a call of about {@code work} multiply-adds (or
   * comparable operations): it runs on at most {@code work / MIN_WORK_PER_THREAD} threads.
   */
  public void parallelRanges(int n, int grain, long work, RangeBody body) {
    if (n < 0 || grain < 1 || work < 0) {
      throw new IllegalArgumentException("n=" + n + " grain=" + grain + " work=" + work);
    }
    int units = (int) (((long) n + grain - 1) / grain);
    int parts = (int) Math.min(Math.min(threads, units), Math.max(1, work / MIN_WORK_PER_THREAD));
    if (parts <= 1 || closed || !busy.compareAndSet(false, true)) {
      if (n > 0) {
        body.run(0, n);
      }
      return;
    }
    try {
      int chunks = Math.min(units, parts * chunksPerThread(threads));
      int chunk = (units + chunks - 1) / chunks * grain;
      Task t = new Task(body, n, chunk, (int) (((long) n + chunk - 1) / chunk), parts - 1);
      task = t; // publishes the task to the workers
      for (int i = 0; i < parts - 1; i++) {
        if (workers[i].parked) {
          LockSupport.unpark(workers[i].thread);
        }
      }
      t.runChunks();
      t.awaitDone();
      rethrow(t.failure.get());
    } finally {
      busy.set(false);
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
    task = new Task((a, b) -> {}, 0, 1, 0, 0);
    for (Worker w : workers) {
      LockSupport.unpark(w.thread);
    }
  }

  /**
   * One call: its body and range, the next chunk to claim and the chunks done.
   *
   * <p>Every thread of a call updates the claim counter and the done count, so they are the call's
   * contended cache lines: they sit {@link #COUNTER_GAP} ints apart (two lines and more, so the
   * adjacent-line prefetch does not pair them), and a thread adds the chunks it ran to the done
   * count once, when no chunk is left, not once per chunk.
   */
  private static final class Task {
    private static final int COUNTER_GAP = 32;
    private static final int NEXT = 0;
    private static final int DONE = COUNTER_GAP;

    final RangeBody body;
    final int n;
    final int chunk;
    final int count;

    /** How many workers join (the first ones of the team); the caller runs chunks too. */
    final int helpers;

    final AtomicIntegerArray counters = new AtomicIntegerArray(2 * COUNTER_GAP);
    final AtomicReference<Throwable> failure = new AtomicReference<>();

    Task(RangeBody body, int n, int chunk, int count, int helpers) {
      this.body = body;
      this.n = n;
      this.chunk = chunk;
      this.count = count;
      this.helpers = helpers;
    }

    /** Claims and runs chunks until none is left. */
    void runChunks() {
      int c;
      int ran = 0;
      while ((c = counters.getAndIncrement(NEXT)) < count) {
        try {
          int start = c * chunk;
          body.run(start, Math.min(n, start + chunk));
        } catch (Throwable e) {
          failure.compareAndSet(null, e);
        } finally {
          ran++;
        }
      }
      if (ran > 0) {
        counters.getAndAdd(DONE, ran);
      }
    }

    /** Waits for the chunks other threads claimed. */
    void awaitDone() {
      int spins = 0;
      while (counters.get(DONE) < count) {
        if (++spins < 4096) {
          Thread.onSpinWait();
        } else {
          // A descheduled worker holding a chunk: give the core away instead of burning it.
          Thread.yield();
        }
      }
    }
  }

  /** One team member: waits for a new task, runs chunks of it. */
  private final class Worker implements Runnable {
    private static final AtomicInteger IDS = new AtomicInteger();
    final Thread thread;

    /** Position in the team: a call that wants {@code k} helpers is joined by workers 0..k-1. */
    final int index;

    volatile boolean parked;

    Worker(int index) {
      this.index = index;
      this.thread = new Thread(this, "kvant-compute-" + IDS.incrementAndGet());
      thread.setDaemon(true);
    }

    @Override
    public void run() {
      // The task at construction: a call published before this thread runs is seen.
      Task seen = null;
      while (true) {
        Task t = awaitTask(seen);
        if (closed) {
          return;
        }
        seen = t;
        if (index < t.helpers) {
          t.runChunks();
        }
      }
    }

    private Task awaitTask(Task seen) {
      long spinStart = System.nanoTime();
      int spins = 0;
      while (true) {
        Task t = task;
        if (t != seen) {
          return t;
        }
        if ((++spins & 255) != 0 || System.nanoTime() - spinStart < SPIN_NANOS) {
          Thread.onSpinWait();
          continue;
        }
        // Park; the caller unparks every worker it sees parked after publishing a task, and the
        // re-check below closes the window between the flag and the park.
        parked = true;
        if (task == seen) {
          LockSupport.park(this);
        }
        parked = false;
        spinStart = System.nanoTime();
      }
    }
  }
}
