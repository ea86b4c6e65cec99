package io.kvant.perf.bandwidth;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.CyclicBarrier;
import java.util.function.LongSupplier;
import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * A STREAM-like memory-bandwidth probe (after McCalpin's STREAM: copy, scale, add, triad), in Java,
 * plus a read-only kernel ({@code read}: a vectorised sum) because LLM decode is read-bound.
 *
 * <p>Three {@code double} arrays of {@code n} elements each (choose {@code n} so one array is many
 * times the last-level cache), off the heap as the weights are (so the probe runs under the
 * launcher's small default heap), are split into equal contiguous slices, one per thread; each
 * kernel is timed from the first worker's start to the last worker's end (all released by one
 * barrier), {@code trials} times, and the best time is kept, as STREAM does. Bytes counted per
 * element follow STREAM: copy and scale 16, add and triad 24, read 8 (write-allocate traffic is not
 * counted, so true traffic of the writing kernels is higher). The arrays are initialised by the
 * threads that use them (first touch), and every kernel is JIT-compiled on a small slice before the
 * timed passes.
 */
public final class BandwidthProbe {
  private static final VectorSpecies<Double> S = DoubleVector.SPECIES_PREFERRED;
  private static final ValueLayout.OfDouble D = ValueLayout.JAVA_DOUBLE;
  private static final ByteOrder ORDER = ByteOrder.nativeOrder();

  /** Kernels, in the order they run. */
  public static final List<String> KERNELS = List.of("copy", "scale", "add", "triad", "read");

  private final int n;
  private final int trials;
  private final LongSupplier nanoTime;
  private volatile double blackhole;

  /**
   * @param n elements per array
   * @param trials timed repetitions per kernel (the best is kept)
   * @param nanoTime the clock
   */
  public BandwidthProbe(int n, int trials, LongSupplier nanoTime) {
    if (n < 1024 || trials < 1) {
      throw new IllegalArgumentException("need n >= 1024 and trials >= 1");
    }
    this.n = n;
    this.trials = trials;
    this.nanoTime = nanoTime;
  }

  /**
   * Result of one kernel.
   *
   * @param kernel name
   * @param threads threads used
   * @param bestGbPerS bytes counted / best time, in GB/s (10^9)
   * @param bestSeconds best time of one pass
   */
  public record KernelResult(String kernel, int threads, double bestGbPerS, double bestSeconds) {}

  /** Runs every kernel with {@code threads} threads; returns results by kernel name. */
  public Map<String, KernelResult> run(int threads) {
    try (Arena arena = Arena.ofShared()) {
      MemorySegment a = arena.allocate(8L * n, 64);
      MemorySegment b = arena.allocate(8L * n, 64);
      MemorySegment c = arena.allocate(8L * n, 64);
      return run(threads, a, b, c);
    }
  }

  private Map<String, KernelResult> run(
      int threads, MemorySegment a, MemorySegment b, MemorySegment c) {
    double[] sink = new double[threads];
    long[] starts = new long[threads];
    long[] ends = new long[threads];
    Map<String, KernelResult> out = new LinkedHashMap<>();
    long[] best = new long[KERNELS.size()];
    java.util.Arrays.fill(best, Long.MAX_VALUE);
    CyclicBarrier barrier = new CyclicBarrier(threads + 1);
    List<Thread> workers = new ArrayList<>();
    for (int t = 0; t < threads; t++) {
      int from = (int) ((long) n * t / threads);
      int to = (int) ((long) n * (t + 1) / threads);
      int id = t;
      Thread w =
          Thread.ofPlatform()
              .name("bandwidth-" + t)
              .daemon()
              .start(
                  () -> {
                    try {
                      for (int i = from; i < to; i++) {
                        a.setAtIndex(D, i, 1.0);
                        b.setAtIndex(D, i, 2.0);
                        c.setAtIndex(D, i, 0.0);
                      }
                      // JIT warm-up, untimed: each kernel on a cache-sized slice until C2 compiles
                      // it, so that the first timed pass does not run interpreted code.
                      int warmTo = Math.min(to, from + 8192);
                      for (int rep = 0; rep < 2000; rep++) {
                        for (int k = 0; k < KERNELS.size(); k++) {
                          sink[id] += kernel(k, a, b, c, from, warmTo);
                        }
                      }
                      barrier.await();
                      for (int trial = 0; trial < trials; trial++) {
                        for (int k = 0; k < KERNELS.size(); k++) {
                          barrier.await();
                          starts[id] = nanoTime.getAsLong();
                          sink[id] += kernel(k, a, b, c, from, to);
                          ends[id] = nanoTime.getAsLong();
                          barrier.await();
                        }
                      }
                    } catch (InterruptedException | BrokenBarrierException e) {
                      Thread.currentThread().interrupt();
                    }
                  });
      workers.add(w);
    }
    try {
      barrier.await();
      for (int trial = 0; trial < trials; trial++) {
        for (int k = 0; k < KERNELS.size(); k++) {
          barrier.await();
          barrier.await();
          // Timed by the workers themselves: with as many workers as cores, this thread may not
          // run until one of them is done.
          long first = Long.MAX_VALUE;
          long last = Long.MIN_VALUE;
          for (int t = 0; t < threads; t++) {
            first = Math.min(first, starts[t]);
            last = Math.max(last, ends[t]);
          }
          best[k] = Math.min(best[k], last - first);
        }
      }
      for (Thread w : workers) {
        w.join();
      }
    } catch (InterruptedException | BrokenBarrierException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("bandwidth probe interrupted", e);
    }
    for (int k = 0; k < KERNELS.size(); k++) {
      double seconds = Math.max(1, best[k]) / 1e9;
      double bytes = (double) bytesPerElement(KERNELS.get(k)) * n;
      out.put(
          KERNELS.get(k),
          new KernelResult(KERNELS.get(k), threads, bytes / seconds / 1e9, seconds));
    }
    for (double v : sink) {
      blackhole += v; // keeps the read kernel's sums alive
    }
    return out;
  }

  /** STREAM's byte count per element of a kernel. */
  public static int bytesPerElement(String kernel) {
    return switch (kernel) {
      case "copy", "scale" -> 16;
      case "add", "triad" -> 24;
      case "read" -> 8;
      default -> throw new IllegalArgumentException("kernel: " + kernel);
    };
  }

  private static double kernel(
      int k, MemorySegment a, MemorySegment b, MemorySegment c, int from, int to) {
    double q = 3.0;
    switch (k) {
      case 0 -> MemorySegment.copy(a, 8L * from, c, 8L * from, 8L * (to - from));
      case 1, 2, 3 -> {
        int i = from;
        int upper = from + S.loopBound(to - from);
        for (; i < upper; i += S.length()) {
          long at = 8L * i;
          DoubleVector vc = DoubleVector.fromMemorySegment(S, c, at, ORDER);
          if (k == 1) {
            vc.mul(q).intoMemorySegment(b, at, ORDER);
          } else if (k == 2) {
            DoubleVector.fromMemorySegment(S, a, at, ORDER)
                .add(DoubleVector.fromMemorySegment(S, b, at, ORDER))
                .intoMemorySegment(c, at, ORDER);
          } else {
            DoubleVector.fromMemorySegment(S, b, at, ORDER)
                .add(vc.mul(q))
                .intoMemorySegment(a, at, ORDER);
          }
        }
        for (; i < to; i++) {
          switch (k) {
            case 1 -> b.setAtIndex(D, i, q * c.getAtIndex(D, i));
            case 2 -> c.setAtIndex(D, i, a.getAtIndex(D, i) + b.getAtIndex(D, i));
            default -> a.setAtIndex(D, i, b.getAtIndex(D, i) + q * c.getAtIndex(D, i));
          }
        }
      }
      case 4 -> {
        return sum(a, from, to);
      }
      default -> throw new IllegalArgumentException();
    }
    return 0;
  }

  /** A vectorised sum of elements {@code [from, to)} with four independent accumulators. */
  static double sum(MemorySegment a, int from, int to) {
    int step = S.length() * 4;
    DoubleVector s0 = DoubleVector.zero(S);
    DoubleVector s1 = DoubleVector.zero(S);
    DoubleVector s2 = DoubleVector.zero(S);
    DoubleVector s3 = DoubleVector.zero(S);
    int i = from;
    for (; i + step <= to; i += step) {
      long at = 8L * i;
      s0 = s0.add(DoubleVector.fromMemorySegment(S, a, at, ORDER));
      s1 = s1.add(DoubleVector.fromMemorySegment(S, a, at + 8L * S.length(), ORDER));
      s2 = s2.add(DoubleVector.fromMemorySegment(S, a, at + 16L * S.length(), ORDER));
      s3 = s3.add(DoubleVector.fromMemorySegment(S, a, at + 24L * S.length(), ORDER));
    }
    double s = s0.add(s1).add(s2).add(s3).reduceLanes(VectorOperators.ADD);
    for (; i < to; i++) {
      s += a.getAtIndex(D, i);
    }
    return s;
  }
}
