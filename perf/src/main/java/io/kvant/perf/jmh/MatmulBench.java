package io.kvant.perf.jmh;

import io.kvant.engine.tensor.DType;
import io.kvant.engine.tensor.Tensor;
import io.kvant.engine.tensor.Tensors;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
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
 * Single-threaded {@link Tensor#matmul} / {@link Tensor#matmulScalar} throughput per storage type,
 * shape and batch size.
 *
 * <p>Derived figures (printed at teardown, computed from the measured ops/s): {@code GFLOP/s =
 * ops/s * 2 * rows * cols * batch / 1e9} and {@code GB/s = ops/s * weightBytes / 1e9}, where {@code
 * weightBytes = type.byteSize(rows, cols)} is the weight matrix streamed once per op (activations
 * are negligible). Weights live off-heap like a mapped model file; the largest shape (8192x2048, 64
 * MiB in F32) exceeds the caches, the smaller ones partly fit.
 *
 * <p>Run:
 *
 * <pre>
 * ./mvnw -q -pl perf -am package -DskipTests
 * java --add-modules jdk.incubator.vector -cp "perf/target/classes:$(cat perf/target/classpath.txt)" \
 *     org.openjdk.jmh.Main MatmulBench -f 1 -wi 2 -i 3 -w 1s -r 1s -p type=Q8_0,F32 -p impl=vector
 * </pre>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(
    value = 1,
    jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class MatmulBench {
  @Param({"F32", "F16", "BF16", "Q8_0", "Q4_0"})
  public DType type;

  @Param({"vector", "scalar"})
  public String impl;

  /** rows x cols (output x input features). */
  @Param({"576x576", "2048x2048", "8192x2048"})
  public String shape;

  @Param({"1", "4", "16"})
  public int batch;

  private Arena arena;
  private Tensor w;
  private float[] x;
  private float[] out;
  private boolean vector;
  private long ops;
  private long startNanos;

  @Setup(Level.Trial)
  public void setup() {
    String[] dims = shape.split("x");
    int rows = Integer.parseInt(dims[0]);
    int cols = Integer.parseInt(dims[1]);
    Random rnd = new Random(1);
    arena = Arena.ofShared();
    MemorySegment data = arena.allocate(type.byteSize(rows, cols), 64);
    fillRandom(type, data, rnd);
    w = Tensors.of(type, rows, cols, data.asReadOnly());
    x = new float[batch * cols];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) rnd.nextGaussian();
    }
    out = new float[batch * rows];
    vector =
        switch (impl) {
          case "vector" -> true;
          case "scalar" -> false;
          default -> throw new IllegalArgumentException("impl: " + impl);
        };
  }

  @Setup(Level.Iteration)
  public void startIteration() {
    ops = 0;
    startNanos = System.nanoTime();
  }

  @Benchmark
  public float[] matmul() {
    if (vector) {
      w.matmul(x, batch, out, 0, w.rows());
    } else {
      w.matmulScalar(x, batch, out, 0, w.rows());
    }
    ops++;
    return out;
  }

  /** Prints the derived GFLOP/s and GB/s of the iteration just measured (or warmed up). */
  @TearDown(Level.Iteration)
  public void report() {
    double seconds = (System.nanoTime() - startNanos) / 1e9;
    double opsPerSecond = ops / seconds;
    double gflops = opsPerSecond * 2.0 * w.rows() * w.cols() * batch / 1e9;
    double gbytes = opsPerSecond * w.byteSize() / 1e9;
    System.out.printf(
        " [%s %s %s b=%d: %.2f GFLOP/s, %.2f GB/s]", type, impl, shape, batch, gflops, gbytes);
  }

  @TearDown(Level.Trial)
  public void close() {
    arena.close();
  }

  /** Valid random contents: gaussian values or random int8/nibbles with small +/- fp16 scales. */
  private static void fillRandom(DType type, MemorySegment data, Random rnd) {
    ValueLayout.OfShort shortLe =
        ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    ValueLayout.OfFloat floatLe =
        ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    long size = data.byteSize();
    switch (type) {
      case F32 -> {
        for (long o = 0; o < size; o += 4) {
          data.set(floatLe, o, (float) rnd.nextGaussian());
        }
      }
      case F16 -> {
        for (long o = 0; o < size; o += 2) {
          data.set(shortLe, o, Float.floatToFloat16((float) rnd.nextGaussian()));
        }
      }
      case BF16 -> {
        for (long o = 0; o < size; o += 2) {
          data.set(
              shortLe, o, (short) (Float.floatToRawIntBits((float) rnd.nextGaussian()) >>> 16));
        }
      }
      case Q8_0, Q4_0 -> {
        for (long o = 0; o < size; o += type.blockBytes()) {
          data.set(shortLe, o, Float.floatToFloat16((rnd.nextFloat() - 0.5f) * 0.02f));
          for (int j = 2; j < type.blockBytes(); j++) {
            data.set(ValueLayout.JAVA_BYTE, o + j, (byte) rnd.nextInt(256));
          }
        }
      }
    }
  }
}
