import io.kvant.engine.tensor.ComputePool;
import io.kvant.engine.tensor.DType;
import io.kvant.engine.tensor.Tensor;
import io.kvant.engine.tensor.packed.PackedMatrix;
import io.kvant.engine.tensor.packed.QuantizedInput;
import io.kvant.engine.tensor.Tensors;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Random;

/**
 * Batched-decode probe: {@code PackedMatrix.matmulTiled} (the GEMM) against {@code matmulByPanel}
 * (the per-panel passes, eight rows at a time) on the same random matrices and input rows, one
 * thread, the two alternated round by round (order swapped every round) in one JVM; the results are
 * checked bitwise equal first. Each shape gets enough copies to fill about 8 MB of packed weights
 * (past L2, like a model's layers). Prints the best time per call of the rounds after the first
 * two, and the ratio of the per-panel path's time to the GEMM's (issue 18, session 12).
 *
 * <pre>
 * ./mvnw -B -o -q package -pl engine -DskipTests
 * java --add-modules jdk.incubator.vector -cp engine/target/classes tools/cpu/Rows16Probe.java \
 *     Q4_0 16 6 576x576 1536x576 576x1536
 * </pre>
 *
 * Arguments: type (Q4_0, Q8_0), input rows, rounds, then shapes as ROWSxCOLS.
 */
public class Rows16Probe {
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
    DType type = DType.valueOf(a[0]);
    int batch = Integer.parseInt(a[1]);
    int rounds = Integer.parseInt(a[2]);
    Random r = new Random(1);
    Arena arena = Arena.ofShared();
    ComputePool pool = new ComputePool(1);
    for (int si = 3; si < a.length; si++) {
      String[] rc = a[si].split("x");
      int rows = Integer.parseInt(rc[0]);
      int cols = Integer.parseInt(rc[1]);
      int n = Math.max(1, (int) (8_000_000L / ((long) rows * cols / 2)));
      PackedMatrix[] m = new PackedMatrix[n];
      for (int i = 0; i < n; i++) {
        m[i] = PackedMatrix.pack(random(type, rows, cols, arena, r), pool);
      }
      float[] x = new float[batch * cols];
      for (int i = 0; i < x.length; i++) {
        x[i] = (float) r.nextGaussian();
      }
      QuantizedInput q = new QuantizedInput();
      q.quantize(x, batch, cols);
      float[] o1 = new float[batch * rows];
      float[] o2 = new float[batch * rows];
      m[0].matmulTiled(q, o1, 0, m[0].panels());
      m[0].matmulByPanel(q, o2, 0, m[0].panels());
      if (!java.util.Arrays.equals(o1, o2)) {
        throw new AssertionError("the two paths differ");
      }
      double[] best = {Double.MAX_VALUE, Double.MAX_VALUE};
      for (int round = 0; round < rounds; round++) {
        for (int k = 0; k < 2; k++) {
          int which = round % 2 == 0 ? k : 1 - k;
          long t0 = System.nanoTime();
          long calls = 0;
          while (System.nanoTime() - t0 < 300_000_000L) {
            for (PackedMatrix p : m) {
              if (which == 0) {
                p.matmulTiled(q, o1, 0, p.panels());
              } else {
                p.matmulByPanel(q, o1, 0, p.panels());
              }
              calls++;
            }
          }
          double us = (System.nanoTime() - t0) / 1e3 / calls;
          if (round >= 2) {
            best[which] = Math.min(best[which], us);
          }
        }
      }
      double macs = (double) rows * cols * batch;
      System.out.printf(
          "%s %dx%d b=%d x%d: tiled %.1f us (%.1f GMAC/s)  byPanel %.1f us (%.1f GMAC/s)"
              + "  panel/tiled time %.3f%n",
          type, rows, cols, batch, n, best[0], macs / best[0] / 1e3, best[1],
          macs / best[1] / 1e3, best[1] / best[0]);
    }
    pool.close();
  }
}
