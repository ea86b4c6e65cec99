package io.kvant.perf.jmh;

import io.kvant.engine.tensor.ComputePool;
import io.kvant.engine.tensor.DType;
import io.kvant.engine.tensor.Tensor;
import io.kvant.engine.tensor.packed.PackedMatrix;
import io.kvant.engine.tensor.packed.QuantizedInput;
import java.lang.foreign.Arena;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * One thread, one quantized weight matrix, many input rows (a prefill chunk) on the integer path:
 * the per-panel kernels ({@link PackedMatrix#matmulByPanel}, four input rows per pass over a panel)
 * against the cache-blocked GEMM ({@link PackedMatrix#matmulTiled}). Activations are quantized once
 * in setup, so the figure is the kernel alone. Time per call.
 *
 * <pre>
 * ./mvnw -q -pl perf -am package -DskipTests
 * java --add-modules jdk.incubator.vector -cp "perf/target/classes:$(cat perf/target/classpath.txt)" \
 *     org.openjdk.jmh.Main PrefillGemmBench -f 1 -wi 2 -i 3 -w 1s -r 1s
 * </pre>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Fork(
    value = 1,
    jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"})
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
public class PrefillGemmBench {
  @Param({"Q8_0", "Q4_0"})
  public DType type;

  /** {@code panel}: {@link PackedMatrix#matmulByPanel}; {@code tiled}: the GEMM. */
  @Param({"panel", "tiled"})
  public String kernel;

  /** rows x cols (output x input features): a 1B model's q/o, gate/up and down projections. */
  @Param({"2048x2048", "8192x2048", "2048x8192"})
  public String shape;

  @Param({"64", "128", "256"})
  public int batch;

  private Arena arena;
  private PackedMatrix packed;
  private final QuantizedInput xq = new QuantizedInput();
  private float[] out;
  private boolean tiled;

  @Setup
  public void setup() {
    String[] dims = shape.split("x");
    int rows = Integer.parseInt(dims[0]);
    int cols = Integer.parseInt(dims[1]);
    Random rnd = new Random(1);
    arena = Arena.ofShared();
    Tensor w = RandomBlockWeights.of(type, rows, cols, arena, rnd);
    float[] x = new float[batch * cols];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) rnd.nextGaussian();
    }
    xq.quantize(x, batch, cols);
    out = new float[batch * rows];
    try (ComputePool pool = new ComputePool(1)) {
      packed = PackedMatrix.pack(w, pool);
    }
    tiled =
        switch (kernel) {
          case "panel" -> false;
          case "tiled" -> true;
          default -> throw new IllegalArgumentException("kernel: " + kernel);
        };
  }

  @Benchmark
  public float[] matmul() {
    if (tiled) {
      packed.matmulTiled(xq, out, 0, packed.panels());
    } else {
      packed.matmulByPanel(xq, out, 0, packed.panels());
    }
    return out;
  }

  @TearDown
  public void close() {
    arena.close();
  }
}
