package io.kvant.perf.jmh;

import io.kvant.engine.sample.Sampler;
import io.kvant.engine.sample.SamplingParams;
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
import org.openjdk.jmh.annotations.Warmup;

/**
 * One token drawn on the host ({@link Sampler#sample}) from a row of logits: Gaussian logits
 * (standard deviation 3, a broad distribution, so the filters keep many tokens), temperature 0.8,
 * with no filter, top-p 0.9, top-k 40 or min-p 0.05. Time per token.
 *
 * <pre>
 * ./mvnw -q -pl perf -am package -DskipTests
 * java --add-modules jdk.incubator.vector -cp "perf/target/classes:$(cat perf/target/classpath.txt)" \
 *     org.openjdk.jmh.Main SamplerBench
 * </pre>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Fork(value = 1)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class SamplerBench {
  @Param({"4096", "32000", "128256"})
  public int vocab;

  @Param({"none", "top-p", "top-k", "min-p"})
  public String filter;

  private float[] logits;
  private Sampler sampler;

  @Setup
  public void setup() {
    Random rnd = new Random(1);
    logits = new float[vocab];
    for (int i = 0; i < vocab; i++) {
      logits[i] = (float) (rnd.nextGaussian() * 3);
    }
    SamplingParams p =
        switch (filter) {
          case "none" -> new SamplingParams(0.8f, 0, 0, 0, 0, 0, 0, 7);
          case "top-p" -> new SamplingParams(0.8f, 0, 0.9f, 0, 0, 0, 0, 7);
          case "top-k" -> new SamplingParams(0.8f, 40, 0, 0, 0, 0, 0, 7);
          case "min-p" -> new SamplingParams(0.8f, 0, 0, 0.05f, 0, 0, 0, 7);
          default -> throw new IllegalArgumentException(filter);
        };
    sampler = new Sampler(p, new int[0]);
  }

  @Benchmark
  public int sample() {
    return sampler.sample(logits, 0, vocab);
  }
}
