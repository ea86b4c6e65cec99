package io.kvant.engine.kv;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * LRU against TinyLFU-admission eviction on a seeded synthetic chat trace: 20 system prompts with
 * Zipf(1.0) popularity, each request one system prompt plus a random user suffix, a random number
 * of generated tokens, 8 requests in flight. Hit ratio = prompt tokens served from the cache over
 * prompt tokens looked up. Results are printed to the test log.
 */
class PrefixCacheTraceTest {
  private static final KvGeometry G = new KvGeometry(1, 1, 8);
  private static final int REQUESTS = 3000;
  private static final int IN_FLIGHT = 8;

  record TraceRequest(int[] tokens, int promptLength) {}

  static List<TraceRequest> trace(long seed) {
    SplittableRandom r = new SplittableRandom(seed);
    int prompts = 20;
    int[][] system = new int[prompts][];
    for (int p = 0; p < prompts; p++) {
      system[p] = new int[96 + r.nextInt(225)];
      for (int i = 0; i < system[p].length; i++) {
        system[p][i] = r.nextInt(32_000);
      }
    }
    double[] cdf = new double[prompts];
    double sum = 0;
    for (int p = 0; p < prompts; p++) {
      sum += 1.0 / (p + 1);
      cdf[p] = sum;
    }
    List<TraceRequest> out = new ArrayList<>();
    for (int q = 0; q < REQUESTS; q++) {
      double u = r.nextDouble() * sum;
      int p = 0;
      while (cdf[p] < u) {
        p++;
      }
      int suffix = 16 + r.nextInt(81);
      int gen = 16 + r.nextInt(81);
      int[] t = new int[system[p].length + suffix + gen];
      System.arraycopy(system[p], 0, t, 0, system[p].length);
      for (int i = system[p].length; i < t.length; i++) {
        t[i] = r.nextInt(32_000);
      }
      out.add(new TraceRequest(t, system[p].length + suffix));
    }
    return out;
  }

  static double replay(List<TraceRequest> trace, int blocks, EvictionPolicyKind policy) {
    long perBlock = 16 * G.bytesPerToken(KvCacheType.F32);
    KvCacheManager kv =
        new KvCacheManager(
            G, new KvCacheConfig(KvCacheType.F32, 16, blocks * perBlock, policy, true));
    ArrayDeque<Integer> running = new ArrayDeque<>();
    for (TraceRequest req : trace) {
      int seq = -1;
      for (int tries = 0; tries <= IN_FLIGHT && seq < 0; tries++) {
        if (running.size() >= IN_FLIGHT || tries > 0) {
          kv.free(running.poll());
        }
        PrefixMatch m = kv.findCachedPrefix(req.tokens(), req.promptLength(), "v1");
        seq = kv.open(m, req.tokens().length - m.cachedTokens());
      }
      assertThat(seq).as("a request fits an empty cache").isNotNegative();
      kv.cacheComputed(seq, req.tokens(), req.tokens().length);
      running.add(seq);
    }
    while (!running.isEmpty()) {
      kv.free(running.poll());
    }
    kv.checkInvariants();
    assertThat(kv.freeBlocks()).isEqualTo(kv.totalBlocks());
    return kv.stats().hitRatio();
  }

  @Test
  void tinyLfuBeatsLruOnSharedSystemPrompts() {
    List<TraceRequest> trace = trace(2026);
    StringBuilder log = new StringBuilder("prefix-cache hit ratio (tokens), " + REQUESTS);
    log.append(" requests, 20 Zipf system prompts, ").append(IN_FLIGHT).append(" in flight\n");
    Map<EvictionPolicyKind, Double> at256 = new EnumMap<>(EvictionPolicyKind.class);
    for (int blocks : new int[] {192, 256, 384, 512}) {
      for (EvictionPolicyKind p : EvictionPolicyKind.values()) {
        double h = replay(trace, blocks, p);
        if (blocks == 256) {
          at256.put(p, h);
        }
        log.append(String.format("  %4d blocks %-8s %.3f%n", blocks, p, h));
      }
    }
    System.out.print(log);
    assertThat(at256.get(EvictionPolicyKind.TINY_LFU))
        .isGreaterThan(at256.get(EvictionPolicyKind.LRU));
  }
}
