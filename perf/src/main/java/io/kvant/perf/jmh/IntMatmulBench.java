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
 * One thread, one quantized weight matrix: the float path ({@link Tensor#matmul}: decode blocks to
 * float, FMA) against the integer path (quantize the activations to int8 per block of 32, then
 * {@link PackedMatrix#matmul}). The integer figure includes quantizing the input. Time per call;
 * weights off-heap (the 8192x2048 shapes exceed L2, so they also measure streaming).
 *
 * <pre>
 * ./mvnw -q -pl perf -am package -DskipTests
 * java --add-modules jdk.incubator.vector -cp "perf/target/classes:$(cat perf/target/classpath.txt)" \
 *     org.openjdk.jmh.Main IntMatmulBench -f 1 -wi 3 -i 5 -w 1s -r 1s
 * </pre>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Fork(
    value = 1,
    jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class IntMatmulBench {
  @Param({"Q8_0", "Q4_0"})
  public DType type;

  @Param({"float", "int"})
  public String path;

  /** rows x cols (output x input features). */
  @Param({"576x576", "2048x2048", "8192x2048"})
  public String shape;

  @Param({"1", "16"})
  public int batch;

  private Arena arena;
  private Tensor w;
  private PackedMatrix packed;
  private final QuantizedInput xq = new QuantizedInput();
  private float[] x;
  private float[] out;

  @Setup
  public void setup() {
    String[] dims = shape.split("x");
    int rows = Integer.parseInt(dims[0]);
    int cols = Integer.parseInt(dims[1]);
    Random rnd = new Random(1);
    arena = Arena.ofShared();
    w = RandomBlockWeights.of(type, rows, cols, arena, rnd);
    x = new float[batch * cols];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) rnd.nextGaussian();
    }
    out = new float[batch * rows];
    if (path.equals("int")) {
      try (ComputePool pool = new ComputePool(1)) {
        packed = PackedMatrix.pack(w, pool);
      }
    } else if (!path.equals("float")) {
      throw new IllegalArgumentException("path: " + path);
    }
  }

  @Benchmark
  public float[] matmul() {
    if (packed == null) {
      w.matmul(x, batch, out, 0, w.rows());
    } else {
      xq.quantize(x, batch, w.cols());
      packed.matmul(xq, out);
    }
    return out;
  }

  @TearDown
  public void close() {
    arena.close();
  }
}
