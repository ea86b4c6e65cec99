package io.kvant.perf.jmh;

import io.kvant.engine.kv.EvictionPolicyKind;
import io.kvant.engine.kv.KvCacheConfig;
import io.kvant.engine.kv.KvCacheManager;
import io.kvant.engine.kv.KvCacheType;
import io.kvant.engine.kv.KvGeometry;
import io.kvant.engine.kv.PrefixMatch;
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
 * Block-pool operations of the paged KV cache, through {@link KvCacheManager} (the pool itself is
 * package-private): what the scheduler pays per request, independent of the model.
 *
 * <ul>
 *   <li>{@code openFree}: open a sequence of {@code promptTokens} with no cache hit, then free it
 *       (block allocation and release, one op = one request's allocate + free).
 *   <li>{@code grow}: open a one-block sequence and grow it block by block to {@code promptTokens}
 *       (decode-time allocation), then free it.
 *   <li>{@code prefixHit}: look up and open a prompt whose blocks are all cached (a repeated system
 *       prompt), then free it: hashing, lookup, ref counting and LRU touch.
 *   <li>{@code lookupMiss}: only {@code findCachedPrefix} on a prompt that is not cached (the cost
 *       every new request pays for prefix caching).
 * </ul>
 *
 * <p>The manager uses a 1-layer, 1-head geometry: the block stores are tiny, so only bookkeeping is
 * timed. Run:
 *
 * <pre>
 * java --add-modules jdk.incubator.vector -cp "perf/target/classes:$(cat perf/target/classpath.txt)" \
 *     org.openjdk.jmh.Main KvCacheBench -f 1 -wi 2 -i 3 -w 1s -r 1s
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
public class KvCacheBench {
  @Param({"512", "4096"})
  public int promptTokens;

  @Param({"LRU", "TINY_LFU"})
  public EvictionPolicyKind eviction;

  private static final KvGeometry GEOMETRY = new KvGeometry(1, 1, 2);
  private static final int BLOCKS = 8192;

  private KvCacheManager kv;
  private int[] cachedPrompt;
  private int[] freshPrompt;
  private int salt;

  @Setup(Level.Trial)
  public void setup() {
    long perBlock =
        new KvCacheConfig(KvCacheType.INT8, 16, 1, eviction, true).bytesPerBlock(GEOMETRY);
    kv =
        new KvCacheManager(
            GEOMETRY, new KvCacheConfig(KvCacheType.INT8, 16, perBlock * BLOCKS, eviction, true));
    cachedPrompt = new int[promptTokens];
    freshPrompt = new int[promptTokens];
    for (int i = 0; i < promptTokens; i++) {
      cachedPrompt[i] = i;
      freshPrompt[i] = 1_000_000 + i;
    }
    PrefixMatch m = kv.findCachedPrefix(cachedPrompt, promptTokens, "v1");
    int seq = kv.open(m, promptTokens);
    kv.cacheComputed(seq, cachedPrompt, promptTokens);
    kv.free(seq);
  }

  @Benchmark
  public int openFree() {
    PrefixMatch m = kv.findCachedPrefix(freshPrompt, 0, "v1");
    int seq = kv.open(m, promptTokens);
    kv.free(seq);
    return seq;
  }

  @Benchmark
  public int grow() {
    PrefixMatch m = kv.findCachedPrefix(freshPrompt, 0, "v1");
    int seq = kv.open(m, 1);
    for (int t = 16; t <= promptTokens; t += 16) {
      kv.grow(seq, t);
    }
    kv.free(seq);
    return seq;
  }

  @Benchmark
  public int prefixHit() {
    PrefixMatch m = kv.findCachedPrefix(cachedPrompt, promptTokens, "v1");
    int seq = kv.open(m, promptTokens - m.cachedTokens());
    kv.free(seq);
    return m.cachedTokens();
  }

  @Benchmark
  public int lookupMiss() {
    freshPrompt[0] = ++salt; // a new first block: nothing after it can hit
    return kv.findCachedPrefix(freshPrompt, promptTokens, "v1").cachedTokens();
  }
}
