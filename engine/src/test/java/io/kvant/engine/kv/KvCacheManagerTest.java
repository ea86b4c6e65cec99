package io.kvant.engine.kv;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class KvCacheManagerTest {
  private static final KvGeometry TINY = new KvGeometry(2, 2, 4);
  private KvCacheManager kv;

  private KvCacheManager manager(int blocks, EvictionPolicyKind eviction) {
    KvCacheConfig probe = KvCacheConfig.of(KvCacheType.F32, 1);
    long perBlock = 4 * TINY.bytesPerToken(KvCacheType.F32);
    kv =
        new KvCacheManager(
            TINY, new KvCacheConfig(probe.type(), 4, blocks * perBlock, eviction, true));
    return kv;
  }

  @AfterEach
  void invariants() {
    if (kv != null) {
      kv.checkInvariants();
    }
  }

  private static int[] seq(int from, int n) {
    int[] t = new int[n];
    for (int i = 0; i < n; i++) {
      t[i] = from + i;
    }
    return t;
  }

  @Test
  void budgetIsSplitIntoBlocks() {
    manager(10, EvictionPolicyKind.LRU);
    assertThat(kv.totalBlocks()).isEqualTo(10);
    assertThat(kv.freeBlocks()).isEqualTo(10);
    assertThat(TINY.bytesPerToken(KvCacheType.F32)).isEqualTo(2L * 2 * 2 * 4 * 4);
    assertThat(TINY.bytesPerToken(KvCacheType.INT8)).isEqualTo(2L * 2 * 2 * (4 + 4));
  }

  @Test
  void fullComputedBlocksAreReusedByTheNextRequestWithTheSamePrefix() {
    manager(10, EvictionPolicyKind.LRU);
    int[] a = seq(100, 10); // 2 full blocks + 2 tokens
    PrefixMatch m = kv.findCachedPrefix(a, 10, "v1");
    assertThat(m.cachedTokens()).isZero();
    int s = kv.open(m, 10);
    assertThat(kv.blocksOf(s)).isEqualTo(3);
    kv.cacheComputed(s, a, 10);
    kv.checkInvariants();
    kv.free(s);
    assertThat(kv.freeBlocks()).isEqualTo(10);

    int[] b = a.clone();
    b[9] = 7; // differs only in the partial block
    PrefixMatch hit = kv.findCachedPrefix(b, 10, "v1");
    assertThat(hit.cachedTokens()).isEqualTo(8);
    int s2 = kv.open(hit, 2);
    kv.checkInvariants();
    assertThat(kv.blocksOf(s2)).isEqualTo(3);
    assertThat(kv.stats().hitTokens()).isEqualTo(8);
    // another version's weights never see it
    assertThat(kv.findCachedPrefix(b, 10, "v2").cachedTokens()).isZero();
    // the same prefix shared by two live sequences
    int s3 = kv.open(kv.findCachedPrefix(b, 10, "v1"), 2);
    assertThat(kv.blockId(s3, 0)).isEqualTo(kv.blockId(s2, 0));
    kv.checkInvariants();
    kv.free(s2);
    kv.free(s3);
  }

  @Test
  void atLeastOneTokenIsLeftToComputeEvenOnAFullHit() {
    manager(10, EvictionPolicyKind.LRU);
    int[] a = seq(0, 8);
    int s = kv.open(kv.findCachedPrefix(a, 8, "v"), 8);
    kv.cacheComputed(s, a, 8);
    kv.free(s);
    assertThat(kv.findCachedPrefix(a, 8, "v").cachedTokens()).isEqualTo(4);
    assertThat(kv.findCachedPrefix(a, 9, "v").cachedTokens()).isEqualTo(8);
  }

  @Test
  void openAndGrowFailWithoutSideEffectsWhenBlocksRunOut() {
    manager(4, EvictionPolicyKind.LRU);
    int s = kv.open(kv.findCachedPrefix(seq(0, 12), 12, "v"), 12);
    assertThat(kv.freeBlocks()).isEqualTo(1);
    assertThat(kv.open(kv.findCachedPrefix(seq(50, 8), 8, "v"), 8)).isEqualTo(-1);
    assertThat(kv.grow(s, 20)).isFalse();
    assertThat(kv.blocksOf(s)).isEqualTo(3);
    assertThat(kv.grow(s, 16)).isTrue();
    assertThat(kv.freeBlocks()).isZero();
    kv.free(s);
  }

  @Test
  void evictedBlocksAreNoLongerHitsAndAStaleMatchIsRefused() {
    manager(3, EvictionPolicyKind.LRU);
    int[] a = seq(0, 9);
    int s = kv.open(kv.findCachedPrefix(a, 9, "v"), 9);
    kv.cacheComputed(s, a, 9);
    kv.free(s);
    PrefixMatch stale = kv.findCachedPrefix(a, 9, "v");
    assertThat(stale.cachedTokens()).isEqualTo(8);
    int other = kv.open(kv.findCachedPrefix(seq(500, 12), 12, "v"), 12); // evicts everything
    assertThatThrownBy(() -> kv.open(stale, 1)).isInstanceOf(IllegalStateException.class);
    assertThat(kv.findCachedPrefix(a, 9, "v").cachedTokens()).isZero();
    assertThat(kv.stats().evictions()).isEqualTo(2);
    kv.free(other);
  }

  @Test
  void randomOperationsKeepTheInvariants() {
    for (EvictionPolicyKind policy : EvictionPolicyKind.values()) {
      manager(24, policy);
      SplittableRandom r = new SplittableRandom(11);
      List<int[]> live = new ArrayList<>(); // {seq, computed, length, prefixId}
      List<int[]> tokens = new ArrayList<>();
      for (int step = 0; step < 3000; step++) {
        int op = r.nextInt(3);
        if (op == 0 || live.isEmpty()) {
          int prefix = r.nextInt(4);
          int n = 1 + r.nextInt(20);
          int[] t = new int[n + 24];
          for (int i = 0; i < t.length; i++) {
            t[i] = i < 9 ? prefix * 1000 + i : r.nextInt(50);
          }
          PrefixMatch m = kv.findCachedPrefix(t, n, "v");
          int s = kv.open(m, n - m.cachedTokens());
          if (s >= 0) {
            kv.cacheComputed(s, t, n);
            live.add(new int[] {s, n});
            tokens.add(t);
          }
        } else if (op == 1) {
          int i = r.nextInt(live.size());
          int[] l = live.get(i);
          if (l[1] < tokens.get(i).length && kv.grow(l[0], l[1] + 1)) {
            l[1]++;
            kv.cacheComputed(l[0], tokens.get(i), l[1]);
          }
        } else {
          int i = r.nextInt(live.size());
          kv.free(live.remove(i)[0]);
          tokens.remove(i);
        }
        kv.checkInvariants();
      }
      for (int[] l : live) {
        kv.free(l[0]);
      }
      kv.checkInvariants();
      assertThat(kv.freeBlocks()).isEqualTo(kv.totalBlocks());
      assertThat(kv.stats().sequences()).isZero();
      assertThat(kv.stats().hitTokens()).isPositive();
    }
  }
}
