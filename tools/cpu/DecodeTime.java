package io.kvant.engine.tensor.packed;

import io.kvant.engine.tensor.ComputePool;
import io.kvant.engine.tensor.DType;
import io.kvant.engine.tensor.Tensor;
import io.kvant.engine.tensor.Tensors;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Random;

/**
 * Times the per-call weight-tile decode of {@code NibbleGemm} on its own: {@code
 * PackedQ4.decodePairTile} and {@code PackedMatrix.decodeScales} over every panel of a random Q4_0
 * matrix in chunks of {@code NibbleGemm.KC} blocks, as one GEMM call does (a call's decode is
 * independent of the number of input rows). Package-private access, so compile it into the
 * engine's package next to the engine jar (the source launcher's class loader would not share the
 * package):
 *
 * <pre>
 * javac --add-modules jdk.incubator.vector -cp engine/target/kvant-engine-0.1.0-SNAPSHOT.jar \
 *     -d /tmp/decode tools/cpu/DecodeTime.java
 * java --add-modules jdk.incubator.vector \
 *     -cp /tmp/decode:engine/target/kvant-engine-0.1.0-SNAPSHOT.jar \
 *     io.kvant.engine.tensor.packed.DecodeTime 2048 2048
 * </pre>
 *
 * Prints both times for 60 passes; the last ones are steady state. Results: perf/RESULTS.md, "CPU
 * 16-row integer GEMM probe (issue 18), session 9".
 */
public class DecodeTime {
  public static void main(String[] a) throws Exception {
    int rows = Integer.parseInt(a[0]), cols = Integer.parseInt(a[1]);
    DType type = DType.Q4_0;
    Random rnd = new Random(1);
    Arena arena = Arena.ofShared();
    MemorySegment data = arena.allocate(type.byteSize(rows, cols), 64);
    int bb = type.blockBytes();
    ValueLayout.OfShort le = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    byte[] b = new byte[bb];
    for (long o = 0; o < data.byteSize(); o += bb) {
      rnd.nextBytes(b);
      MemorySegment.copy(b, 0, data, ValueLayout.JAVA_BYTE, o, bb);
      data.set(le, o, Float.floatToFloat16((rnd.nextFloat() - 0.5f) / 64));
    }
    Tensor t = Tensors.of(type, rows, cols, data.asReadOnly());
    PackedQ4 m = (PackedQ4) PackedMatrix.pack(t, new ComputePool(1));
    System.out.println("halfScales: " + (m.halfScales != null));
    int KC = NibbleGemm.KC, GROUP = NibbleGemm.GROUP;
    int tileSize = KC * 16 * 2 * PackedMatrix.I.length();
    int[] tile = new int[GROUP * tileSize];
    float[] wsc = new float[GROUP * KC * PackedMatrix.PANEL];
    for (int rep = 0; rep < 60; rep++) {
      long t0 = System.nanoTime();
      for (int p = 0; p < m.panels(); p++)
        for (int k0 = 0; k0 < m.blocks; k0 += KC)
          m.decodePairTile(p, k0, Math.min(m.blocks, k0 + KC), tile, (p % GROUP) * tileSize);
      long t1 = System.nanoTime();
      for (int p = 0; p < m.panels(); p++)
        for (int k0 = 0; k0 < m.blocks; k0 += KC)
          m.decodeScales(p, k0, Math.min(KC, m.blocks - k0), wsc, (p % GROUP) * KC * PackedMatrix.PANEL);
      long t2 = System.nanoTime();
      System.out.printf("decodePairTile %.0f us  decodeScales %.0f us%n", (t1 - t0) / 1e3, (t2 - t1) / 1e3);
    }
  }
}
