package io.kvant.engine.kv;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The fixed set of physical KV blocks, their reference counts, the free queue and the prefix-cache
 * index.
 *
 * <p>Design note (after vLLM V1's {@code BlockPool}): every block is either referenced by at least
 * one block table ({@code refCount > 0}) or sits in the {@link FreeBlockQueue}. A full, computed
 * block carries its {@link BlockHash} and is findable in {@code cached}; when its last reference
 * goes it stays cached in the free queue, and can be revived by a prefix hit (O(1) removal from the
 * queue), until the queue hands it out for new data, which is when it is evicted (hash dropped).
 * Where released cached blocks queue up is the {@link EvictionPolicy}'s choice. Single-threaded:
 * the engine loop owns it; nothing here blocks or allocates per step beyond the hash index.
 */
final class BlockPool {
  private final KvBlock[] blocks;
  private final FreeBlockQueue free = new FreeBlockQueue();
  private final Map<BlockHash, KvBlock> cached = new HashMap<>();
  private final EvictionPolicy policy;
  private long evictions;

  BlockPool(int numBlocks, EvictionPolicy policy) {
    if (numBlocks <= 0) {
      throw new IllegalArgumentException("the KV cache needs at least one block");
    }
    this.blocks = new KvBlock[numBlocks];
    this.policy = policy;
    for (int i = 0; i < numBlocks; i++) {
      blocks[i] = new KvBlock(i);
      free.addUncached(blocks[i]);
    }
  }

  int total() {
    return blocks.length;
  }

  /** Blocks that can be handed out now (uncached free blocks plus evictable cached ones). */
  int freeCount() {
    return free.size();
  }

  int cachedCount() {
    return cached.size();
  }

  long evictions() {
    return evictions;
  }

  KvBlock block(int id) {
    return blocks[id];
  }

  EvictionPolicy policy() {
    return policy;
  }

  /** The cached block with this hash, or null. Does not change its reference count. */
  KvBlock lookup(BlockHash hash) {
    return cached.get(hash);
  }

  /** Takes a fresh block for new data (evicting its cached content if any); ref count 1. */
  KvBlock allocate() {
    KvBlock b = free.poll();
    if (b == null) {
      throw new IllegalStateException("no free KV block");
    }
    if (b.hash != null) {
      cached.remove(b.hash);
      b.hash = null;
      evictions++;
    }
    b.refCount = 1;
    return b;
  }

  /** Adds a reference to a (cached) block, taking it out of the free queue if it was there. */
  void touch(KvBlock b) {
    if (b.refCount == 0) {
      free.remove(b);
    }
    b.refCount++;
  }

  /** Drops one reference of each block; blocks reaching zero are queued as one chain. */
  void release(List<KvBlock> chain) {
    List<KvBlock> freed = new java.util.ArrayList<>(chain.size());
    for (KvBlock b : chain) {
      if (b.refCount <= 0) {
        throw new IllegalStateException(b + " released more often than referenced");
      }
      if (--b.refCount == 0) {
        freed.add(b);
      }
    }
    policy.release(freed, free);
  }

  /**
   * Marks a full, computed block as holding {@code hash}. If another block already holds the same
   * content (two requests computed it at once), this one stays unindexed and is reused normally.
   */
  void cache(KvBlock b, BlockHash hash) {
    if (b.hash != null) {
      return;
    }
    if (cached.putIfAbsent(hash, b) == null) {
      b.hash = hash;
    }
  }

  /**
   * Throws if the pool is inconsistent: reference counts must equal {@code expectedRefs} (block id
   * to number of block tables holding it), every zero-ref block is queued exactly once and no
   * referenced block is, and the hash index and block hashes agree.
   */
  void checkInvariants(int[] expectedRefs) {
    int zero = 0;
    for (KvBlock b : blocks) {
      if (b.refCount != expectedRefs[b.id]) {
        throw new IllegalStateException(
            b + " has ref count " + b.refCount + " but " + expectedRefs[b.id] + " tables hold it");
      }
      if ((b.refCount == 0) != free.contains(b)) {
        throw new IllegalStateException(b + " is in the free queue iff its ref count is 0: broken");
      }
      if (b.refCount == 0) {
        zero++;
      }
      if (b.hash != null && cached.get(b.hash) != b) {
        throw new IllegalStateException(b + " has a hash the index does not map to it");
      }
      if (b.hash != null && b.segment == FreeBlockQueue.Segment.UNCACHED) {
        throw new IllegalStateException(b + " is cached but queued as uncached");
      }
    }
    List<KvBlock> queued = free.snapshot();
    if (queued.size() != zero || free.size() != zero) {
      throw new IllegalStateException(
          "free queue holds " + queued.size() + "/" + free.size() + " blocks, expected " + zero);
    }
    for (Map.Entry<BlockHash, KvBlock> e : cached.entrySet()) {
      if (!e.getKey().equals(e.getValue().hash)) {
        throw new IllegalStateException("index maps a hash to " + e.getValue() + " with another");
      }
    }
  }
}
