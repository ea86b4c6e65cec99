import io.kvant.engine.tensor.ComputePool;
import java.util.Arrays;

/**
 * What a {@link ComputePool} call costs beyond its work: calls of a timed busy body (a row's share
 * of {@code bodyMicros}, 576 rows in grains of 16) with {@code gapMicros} of serial work between
 * them, three rounds; prints the time per call against the ideal ({@code body / threads + gap}),
 * the caller's share of the rows, and with two threads when the worker ran its first chunk after
 * the call began (p10/p50/p90/p99). Session 36 on the 2-vCPU development machine: 3 us of work took
 * 6.6 us a call on two threads (5.1 on one), 15 us took 13.8 (ideal 9.5); the worker started
 * 0.6-0.8 us into a call (p99 13-15 us).
 *
 * <pre>
 * java -cp engine/target/kvant-engine-0.1.0-SNAPSHOT.jar tools/cpu/PoolProbe.java 2 15 20000 2
 * </pre>
 *
 * Arguments: threads, body microseconds, calls, gap microseconds.
 */
public class PoolProbe {
  private static volatile long firstWorker;

  public static void main(String[] args) {
    int threads = Integer.parseInt(args[0]);
    long bodyNanos = (long) (Double.parseDouble(args[1]) * 1000);
    int calls = Integer.parseInt(args[2]);
    long gapNanos = (long) (Double.parseDouble(args[3]) * 1000);
    int n = 576;
    long perRow = bodyNanos / n;
    Thread caller = Thread.currentThread();
    try (ComputePool pool = new ComputePool(threads)) {
      for (int round = 0; round < 3; round++) {
        // rows run by the caller [0] and by the workers [1] (each slot written by its side only)
        long[] rows = new long[2];
        long[] start = new long[calls];
        long t0 = System.nanoTime();
        for (int c = 0; c < calls; c++) {
          firstWorker = 0;
          long begun = System.nanoTime();
          pool.parallelRanges(
              n,
              16,
              (long) n * 576,
              (s, e) -> {
                boolean mine = Thread.currentThread() == caller;
                if (!mine && firstWorker == 0) {
                  firstWorker = System.nanoTime();
                }
                long end = System.nanoTime() + perRow * (e - s);
                while (System.nanoTime() < end) {
                  Thread.onSpinWait();
                }
                rows[mine ? 0 : 1] += e - s;
              });
          long fw = firstWorker;
          start[c] = fw == 0 ? Long.MAX_VALUE : fw - begun;
          long gapEnd = System.nanoTime() + gapNanos;
          while (System.nanoTime() < gapEnd) {
            Thread.onSpinWait();
          }
        }
        long t1 = System.nanoTime();
        Arrays.sort(start);
        System.out.printf(
            "threads %d, body %.1f us, gap %.1f us: %.2f us a call (ideal %.2f), caller's share"
                + " %.2f; worker's first chunk after p10 %s p50 %s p90 %s p99 %s us%n",
            threads,
            bodyNanos / 1e3,
            gapNanos / 1e3,
            (t1 - t0) / 1e3 / calls,
            (bodyNanos / (double) threads + gapNanos) / 1e3,
            rows[0] / (double) (rows[0] + rows[1]),
            micros(start[calls / 10]),
            micros(start[calls / 2]),
            micros(start[calls * 9 / 10]),
            micros(start[calls * 99 / 100]));
      }
    }
  }

  private static String micros(long nanos) {
    return nanos == Long.MAX_VALUE ? "-" : String.format("%.2f", nanos / 1e3);
  }
}
