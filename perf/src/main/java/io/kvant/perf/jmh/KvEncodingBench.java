package io.kvant.perf.jmh;

import io.kvant.engine.kv.EvictionPolicyKind;
import io.kvant.engine.kv.KvCacheConfig;
import io.kvant.engine.kv.KvCacheManager;
import io.kvant.engine.kv.KvCacheType;
import io.kvant.engine.kv.KvEncoding;
import io.kvant.engine.kv.KvGeometry;
import io.kvant.engine.kv.KvStore;
import java.util.SplittableRandom;
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
import org.openjdk.jmh.annotations.Warmup;

/**
 * What each INT8/FP8 {@link KvEncoding} costs the paged store, on one layer of 4 KV heads:
 *
 * <ul>
 *   <li>{@code append}: one token's K and V written (all heads), at positions cycling through
 *       {@code 256}: the encoder (the least-squares scale search, a block's channel re-scaling).
 *   <li>{@code attend}: per head, the scores of one query over 256 tokens and the weighted sum of
 *       their values: the read path of one decode step.
 * </ul>
 *
 * Run:
 *
 * <pre>
 * java --add-modules jdk.incubator.vector -cp "perf/target/classes:$(cat perf/target/classpath.txt)" \
 *     org.openjdk.jmh.Main KvEncodingBench -f 1 -wi 2 -i 3 -w 1s -r 1s
 * </pre>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(
    value = 1,
    jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"})
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
public class KvEncodingBench {
  private static final int LEN = 256;
  private static final int HEADS = 4;

  @Param({
    "per-token",
    "hadamard",
    "per-token-mse",
    "kivi",
    "kivi-mse",
    "centered-mse",
    "centered-qmse"
  })
  public String encoding;

  @Param({"INT8", "FP8_E4M3"})
  public KvCacheType type;

  @Param({"8", "32"})
  public int headSize;

  private KvStore store;
  private int seq;
  private float[][] keys;
  private float[][] values;
  private float[] q;
  private float[] weights;
  private float[] scores;
  private float[] out;
  private int pos;

  @Setup(Level.Trial)
  public void setup() {
    KvGeometry g = new KvGeometry(1, HEADS, headSize);
    KvEncoding e = KvEncoding.parse(encoding);
    // The centered encodings' calibrated moments: zero means (the offsets cost the same work
    // whatever their values) and identity query moments.
    io.kvant.engine.kv.KvScales scales = null;
    if (e.centersKeys()) {
      float[] moment = new float[g.kvDim() * headSize];
      for (int i = 0; i < g.kvDim(); i++) {
        moment[i * headSize + i % headSize] = 1f;
      }
      scales =
          new io.kvant.engine.kv.KvScales(
              g,
              false,
              new float[g.kvDim()],
              new float[g.kvDim()],
              new io.kvant.engine.kv.KeyRope(10000, io.kvant.engine.model.RopeStyle.HALF_SPLIT),
              new float[g.kvDim()],
              moment);
    }
    KvCacheManager kv =
        new KvCacheManager(
            g,
            new KvCacheConfig(
                type,
                16,
                2L * LEN * g.bytesPerToken(KvCacheType.F32),
                EvictionPolicyKind.LRU,
                false),
            io.kvant.engine.kv.KvStoreFactory.host(e, scales));
    seq = kv.open(kv.findCachedPrefix(new int[] {1}, 1, "bench"), LEN);
    store = kv.store();
    SplittableRandom r = new SplittableRandom(1);
    keys = new float[LEN][g.kvDim()];
    values = new float[LEN][g.kvDim()];
    for (int t = 0; t < LEN; t++) {
      for (int i = 0; i < g.kvDim(); i++) {
        keys[t][i] = (float) (r.nextGaussian() * (i % headSize == 1 ? 8 : 1));
        values[t][i] = (float) r.nextGaussian();
      }
      store.write(seq, 0, t, keys[t], 0, values[t], 0);
    }
    q = new float[headSize];
    for (int i = 0; i < headSize; i++) {
      q[i] = (float) r.nextGaussian();
    }
    weights = new float[LEN];
    java.util.Arrays.fill(weights, 1f / LEN);
    scores = new float[LEN];
    out = new float[headSize];
  }

  @Benchmark
  public int append() {
    int p = pos;
    store.write(seq, 0, p, keys[p], 0, values[p], 0);
    pos = (p + 1) % LEN;
    return p;
  }

  @Benchmark
  public float attend() {
    float sum = 0f;
    for (int h = 0; h < HEADS; h++) {
      store.keyScores(seq, 0, h, q, 0, LEN, scores);
      store.addWeightedValues(seq, 0, h, weights, LEN, out, 0);
      sum += scores[LEN - 1] + out[0];
    }
    return sum;
  }
}
