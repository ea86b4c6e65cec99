import io.kvant.engine.tensor.ComputePool;
import io.kvant.engine.tensor.DType;
import io.kvant.engine.tensor.Tensor;
import io.kvant.engine.tensor.Tensors;
import io.kvant.engine.tensor.packed.CodeSlabs;
import io.kvant.engine.tensor.packed.PackedMatrix;
import io.kvant.engine.tensor.packed.QuantizedInput;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Random;

/**
 * Packed-kernel probe: {@code PackedMatrix.matmul} of a few input rows over a set of random
 * matrices of one type, one after another, so the set decides whether the weights stream from
 * DRAM (a set larger than the L3 cache) or sit in cache (one small matrix). Prints the time per
 * call of six passes and the best of the last four ("BEST" line). Either engine jar works, which
 * is how two kernels are compared: alternate the jars in one script (perf/RESULTS.md, "CPU integer
 * path, session 8").
 *
 * <pre>
 * java --add-modules jdk.incubator.vector -Xmx3g -cp engine/target/kvant-engine-0.1.0-SNAPSHOT.jar \
 *     tools/cpu/PackedProbe.java Q4_0 32768 2048 4 1 2 1.5
 * </pre>
 *
 * Arguments: type (Q8_0, Q4_0), rows, cols, matrices in the set, threads (1: the calling thread;
 * more: a {@code ComputePool} over panels), input rows, seconds per two passes, and optionally
 * {@code slabs}: the codes in {@link CodeSlabs} (huge pages, as a model's are loaded) instead of
 * an allocation per matrix (small pages under the usual {@code madvise} THP mode). The two differ
 * for one-stream kernels: on small pages every 4 KiB of a stream is a TLB miss and a fresh start
 * for the hardware prefetcher (perf/RESULTS.md, session 34).
 */
public class PackedProbe {
  /** A random {@code rows x cols} tensor of {@code type}: random code bytes, small F16 scales. */
  static Tensor random(DType type, int rows, int cols, Arena arena, Random rnd) {
    MemorySegment data = arena.allocate(type.byteSize(rows, cols), 64);
    int bb = type.blockBytes();
    ValueLayout.OfShort le = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    byte[] b = new byte[bb];
    for (long o = 0; o < data.byteSize(); o += bb) {
      rnd.nextBytes(b);
      MemorySegment.copy(b, 0, data, ValueLayout.JAVA_BYTE, o, bb);
      data.set(le, o, Float.floatToFloat16((rnd.nextFloat() - 0.5f) / 64));
    }
    return Tensors.of(type, rows, cols, data.asReadOnly());
  }

  public static void main(String[] a) throws Exception {
    if (a.length != 7 && !(a.length == 8 && a[7].equals("slabs"))) {
      System.err.println(
          "usage: PackedProbe TYPE ROWS COLS MATRICES THREADS INPUT_ROWS SECONDS [slabs]");
      System.exit(2);
    }
    DType type = DType.valueOf(a[0]);
    int rows = Integer.parseInt(a[1]);
    int cols = Integer.parseInt(a[2]);
    int n = Integer.parseInt(a[3]);
    int threads = Integer.parseInt(a[4]);
    int batch = Integer.parseInt(a[5]);
    double secs = Double.parseDouble(a[6]);
    Random r = new Random(1);
    Arena arena = Arena.ofShared();
    ComputePool pool = new ComputePool(threads);
    CodeSlabs slabs = a.length == 8 ? new CodeSlabs(true) : null;
    PackedMatrix[] m = new PackedMatrix[n];
    for (int i = 0; i < n; i++) {
      m[i] = PackedMatrix.pack(random(type, rows, cols, arena, r), pool, true, slabs);
    }
    float[] x = new float[batch * cols];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) r.nextGaussian();
    }
    QuantizedInput q = new QuantizedInput();
    float[] out = new float[batch * rows];
    long bytes = 0;
    for (PackedMatrix p : m) {
      bytes += p.storageBytes();
    }
    double best = Double.MAX_VALUE;
    for (int pass = 0; pass < 6; pass++) { // the first two are warm-up
      long t0 = System.nanoTime();
      long calls = 0;
      while (System.nanoTime() - t0 < secs * 1e9 / 2 || calls < n) {
        for (PackedMatrix p : m) {
          q.quantize(x, batch, cols);
          if (threads == 1) {
            p.matmul(q, out);
          } else {
            pool.parallelRanges(p.panels(), 1, (s, e) -> p.matmul(q, out, s, e));
          }
          calls++;
        }
      }
      double dt = (System.nanoTime() - t0) / 1e9;
      double us = dt / calls * 1e6;
      if (pass >= 2) {
        best = Math.min(best, us);
      }
      System.out.printf(
          "%s %dx%d x%d t=%d b=%d: %.1f us/call  %.1f GMAC/s  %.1f GB/s%n",
          type, rows, cols, n, threads, batch, us,
          (double) rows * cols * batch * calls / dt / 1e9,
          (double) bytes / n * calls / dt / 1e9);
    }
    System.out.printf(
        "BEST %s %dx%d b=%d t=%d: %.1f us  %.1f GMAC/s%n",
        type, rows, cols, batch, threads, best, (double) rows * cols * batch / best / 1e3);
    pool.close();
  }
}
