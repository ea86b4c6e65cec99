package io.kvant.perf.jmh;

import io.kvant.engine.tensor.Fp8Tensor;
import io.kvant.engine.tensor.Int4Tensor;
import io.kvant.engine.tensor.Int8Tensor;
import io.kvant.engine.tensor.Tensor;
import io.kvant.engine.tensor.Tensors;
import io.kvant.quant.encoding.WeightFormat;
import io.kvant.quant.quantize.GgmlEncoders;
import io.kvant.quant.quantize.Method;
import io.kvant.quant.quantize.QuantSpec;
import io.kvant.quant.quantize.WeightQuantizer;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
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
 * Decode-step (batch 1) matmul time of the quantized weight types against F32, single-threaded, on
 * large synthetic matrices: decode is memory-bound, so smaller weights should win roughly in
 * proportion to their bytes until decoding becomes the bottleneck.
 *
 * <p>Weights are gaussian, quantized with min-max ranges by kvant's own quantizer, and copied
 * off-heap (64-byte aligned) like a mapped model file. {@code GB/s} printed at teardown counts all
 * storage bytes (codes plus scales).
 *
 * <pre>
 * ./mvnw -q -pl perf -am package -DskipTests
 * java --add-modules jdk.incubator.vector -cp "perf/target/classes:$(cat perf/target/classpath.txt)" \
 *     org.openjdk.jmh.Main QuantMatmulBench -f 1 -wi 2 -i 3 -w 1s -r 1s
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
public class QuantMatmulBench {
  /** Storage: F32, I8 (per-channel), I4 group 32 / 128, FP8 E4M3, ggml Q8_0 / Q4_0. */
  @Param({"F32", "I8", "I4_G32", "I4_G128", "F8_E4M3", "Q8_0", "Q4_0"})
  public String type;

  /** rows x cols (output x input features). */
  @Param({"2048x2048", "8192x2048"})
  public String shape;

  @Param({"1"})
  public int batch;

  private Arena arena;
  private Tensor w;
  private float[] x;
  private float[] out;
  private long ops;
  private long startNanos;

  @Setup(Level.Trial)
  public void setup() {
    String[] dims = shape.split("x");
    int rows = Integer.parseInt(dims[0]);
    int cols = Integer.parseInt(dims[1]);
    Random rnd = new Random(1);
    float[] values = new float[rows * cols];
    for (int i = 0; i < values.length; i++) {
      values[i] = (float) rnd.nextGaussian() * 0.02f;
    }
    arena = Arena.ofShared();
    Tensor heap =
        switch (type) {
          case "F32" -> WeightQuantizer.f32(values, rows, cols);
          case "I8" -> quantize(values, rows, cols, QuantSpec.int8(Method.MINMAX));
          case "I4_G32" -> quantize(values, rows, cols, QuantSpec.int4(32, true, Method.MINMAX));
          case "I4_G128" -> quantize(values, rows, cols, QuantSpec.int4(128, true, Method.MINMAX));
          case "F8_E4M3" ->
              quantize(
                  values, rows, cols, QuantSpec.fp8(WeightFormat.FP8_E4M3, false, Method.MINMAX));
          case "Q8_0" -> GgmlEncoders.q8_0(values, rows, cols);
          case "Q4_0" -> GgmlEncoders.q4_0(values, rows, cols);
          default -> throw new IllegalArgumentException("type: " + type);
        };
    w = offHeap(heap);
    x = new float[batch * cols];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) rnd.nextGaussian();
    }
    out = new float[batch * rows];
  }

  private static Tensor quantize(float[] v, int rows, int cols, QuantSpec spec) {
    return WeightQuantizer.quantize("w", v, rows, cols, spec, null).tensor();
  }

  /** The same tensor with its codes copied to an aligned off-heap segment. */
  private Tensor offHeap(Tensor t) {
    MemorySegment seg = arena.allocate(t.byteSize(), 64);
    seg.copyFrom(t.data());
    MemorySegment ro = seg.asReadOnly();
    return switch (t) {
      case Int8Tensor i8 -> Tensors.int8(t.rows(), t.cols(), ro, i8.scales());
      case Int4Tensor i4 ->
          Tensors.int4(
              t.rows(),
              t.cols(),
              i4.groupSize(),
              ro,
              i4.scales(),
              i4.asymmetric() ? i4.zeroPoints() : null);
      case Fp8Tensor f8 -> Tensors.fp8(t.dtype(), t.rows(), t.cols(), ro, f8.scales());
      default -> Tensors.of(t.dtype(), t.rows(), t.cols(), ro);
    };
  }

  @Setup(Level.Iteration)
  public void startIteration() {
    ops = 0;
    startNanos = System.nanoTime();
  }

  @Benchmark
  public float[] matmul() {
    w.matmul(x, batch, out, 0, w.rows());
    ops++;
    return out;
  }

  @TearDown(Level.Iteration)
  public void report() {
    double seconds = (System.nanoTime() - startNanos) / 1e9;
    double opsPerSecond = ops / seconds;
    System.out.printf(
        " [%s %s: %.2f GB/s of %.1f MiB, %.2f bits/weight]",
        type,
        shape,
        opsPerSecond * w.storageBytes() / 1e9,
        w.storageBytes() / 1048576.0,
        8.0 * w.storageBytes() / ((double) w.rows() * w.cols()));
  }

  @TearDown(Level.Trial)
  public void close() {
    arena.close();
  }
}
