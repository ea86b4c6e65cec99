package io.kvant.engine.kv;

import java.util.List;

/**
 * Decides where released cached blocks go in the {@link FreeBlockQueue}. Uncached blocks always go
 * to the uncached segment (reused first).
 */
interface EvictionPolicy {
  /** Called once per full block hash a new or resumed request looks up. */
  void recordAccess(BlockHash hash);

  /**
   * Queues blocks whose reference count just dropped to zero; {@code chain} is in block-table order
   * (prefix first), so a policy can evict a chain's tail before its head: a child block is useless
   * once its parent is gone.
   */
  void release(List<KvBlock> chain, FreeBlockQueue queue);

  static EvictionPolicy create(EvictionPolicyKind kind, int blocks) {
    return switch (kind) {
      case LRU -> new Lru();
      case TINY_LFU -> new TinyLfu(blocks);
    };
  }

  /** Least recently released evicted first; a chain's tail before its head. */
  final class Lru implements EvictionPolicy {
    @Override
    public void recordAccess(BlockHash hash) {}

    @Override
    public void release(List<KvBlock> chain, FreeBlockQueue queue) {
      for (int i = chain.size() - 1; i >= 0; i--) {
        KvBlock b = chain.get(i);
        if (b.hash == null) {
          queue.addUncached(b);
        } else {
          queue.addCachedLast(b);
        }
      }
    }
  }

  /**
   * TinyLFU admission in front of LRU: a released cached block is admitted to the protected end
   * only if its estimated frequency beats the current victim's (ties reject, as in Caffeine);
   * rejected blocks go to the eviction end, still cached until a block is needed.
   */
  final class TinyLfu implements EvictionPolicy {
    private final FrequencySketch sketch;

    TinyLfu(int blocks) {
      this.sketch = new FrequencySketch(blocks);
    }

    @Override
    public void recordAccess(BlockHash hash) {
      sketch.increment(hash.mix());
    }

    @Override
    public void release(List<KvBlock> chain, FreeBlockQueue queue) {
      KvBlock victim = queue.peekCachedVictim();
      int victimFreq = victim == null ? -1 : sketch.frequency(victim.hash.mix());
      boolean[] admit = new boolean[chain.size()];
      for (int i = 0; i < chain.size(); i++) {
        KvBlock b = chain.get(i);
        admit[i] = b.hash != null && sketch.frequency(b.hash.mix()) > victimFreq;
      }
      // admitted: tail first to the protected end, so the head is most protected
      for (int i = chain.size() - 1; i >= 0; i--) {
        KvBlock b = chain.get(i);
        if (b.hash == null) {
          queue.addUncached(b);
        } else if (admit[i]) {
          queue.addCachedLast(b);
        }
      }
      // rejected: head first to the eviction end, so the tail is evicted first
      for (int i = 0; i < chain.size(); i++) {
        KvBlock b = chain.get(i);
        if (b.hash != null && !admit[i]) {
          queue.addCachedFirst(b);
        }
      }
    }
  }
}
