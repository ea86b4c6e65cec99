package io.kvant.engine.tensor;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinTask;
import java.util.concurrent.ForkJoinWorkerThread;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntConsumer;

/**
 * Runs row-parallel work (matmuls, per-head loops) on a fixed number of threads.
 *
 * <p>Design note: work over {@code [0, n)} is cut into at most {@code threads} contiguous ranges;
 * the calling thread runs the first range itself and a private {@link ForkJoinPool} of {@code
 * threads - 1} daemon workers runs the others, so a call costs a few small task objects and one
 * hand-off per extra thread. With one thread everything runs inline. Because {@link Tensor#matmul}
 * computes each output element independently of the row range, a parallel matmul is bitwise equal
 * to a single-threaded one.
 *
 * <p>Thread-safe; concurrent calls share the workers.
 */
public final class ComputePool implements AutoCloseable {
  /** Row ranges given to a matmul task are multiples of this (except the last). */
  public static final int ROW_GRAIN = 16;

  /**
   * Multiply-adds (or comparable float operations) below which a call runs on the calling thread
   * alone.
   */
  public static final long MIN_PARALLEL_WORK = 1L << 18;

  /** A body run over a contiguous index range {@code [start, end)}. */
  @FunctionalInterface
  public interface RangeBody {
    void run(int start, int end);
  }

  private final int threads;
  private final ForkJoinPool pool;

  /**
   * @param threads total threads doing work, including the caller; at least 1
   */
  public ComputePool(int threads) {
    if (threads < 1) {
      throw new IllegalArgumentException("threads must be >= 1, got " + threads);
    }
    this.threads = threads;
    if (threads == 1) {
      this.pool = null;
    } else {
      AtomicInteger ids = new AtomicInteger();
      this.pool =
          new ForkJoinPool(
              threads - 1,
              p -> {
                ForkJoinWorkerThread t =
                    ForkJoinPool.defaultForkJoinWorkerThreadFactory.newThread(p);
                t.setName("kvant-compute-" + ids.incrementAndGet());
                t.setDaemon(true);
                return t;
              },
              null,
              false);
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
    if (parts <= 1) {
      if (n > 0) {
        body.run(0, n);
      }
      return;
    }
    int chunk = (units + parts - 1) / parts * grain;
    ForkJoinTask<?>[] tasks = new ForkJoinTask<?>[parts];
    for (int p = 1; p < parts; p++) {
      int start = p * chunk;
      int end = Math.min(n, start + chunk);
      if (start < end) {
        tasks[p] = pool.submit(() -> body.run(start, end));
      }
    }
    Throwable failure = null;
    try {
      body.run(0, Math.min(n, chunk));
    } catch (Throwable t) {
      failure = t;
    }
    for (int p = 1; p < parts; p++) {
      if (tasks[p] != null) {
        try {
          tasks[p].join();
        } catch (Throwable t) {
          if (failure == null) {
            failure = t;
          }
        }
      }
    }
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
    if (pool != null) {
      pool.shutdown();
    }
  }
}
