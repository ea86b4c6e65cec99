package io.kvant.engine.kv;

import java.util.ArrayList;
import java.util.List;

/**
 * The blocks with reference count zero, in the order they will be reused: first the blocks that
 * hold no cached prefix (reusing them costs nothing), then cached blocks from the eviction end to
 * the protected end. Two intrusive doubly linked lists, so taking a cached block back out of the
 * queue on a prefix hit is O(1) (vLLM's {@code FreeKVCacheBlockQueue} does the same).
 */
final class FreeBlockQueue {
  /** Which list a free block is on. */
  enum Segment {
    UNCACHED,
    CACHED
  }

  private final KvBlock uncached = sentinel();
  private final KvBlock cached = sentinel();
  private int uncachedSize;
  private int cachedSize;

  private static KvBlock sentinel() {
    KvBlock s = new KvBlock(-1);
    s.prev = s;
    s.next = s;
    return s;
  }

  int size() {
    return uncachedSize + cachedSize;
  }

  int cachedSize() {
    return cachedSize;
  }

  /** Adds a block without a hash; it will be reused before any cached block. */
  void addUncached(KvBlock b) {
    link(b, uncached.prev, uncached);
    b.segment = Segment.UNCACHED;
    uncachedSize++;
  }

  /** Adds a cached block at the protected end (evicted last). */
  void addCachedLast(KvBlock b) {
    link(b, cached.prev, cached);
    b.segment = Segment.CACHED;
    cachedSize++;
  }

  /** Adds a cached block at the eviction end (evicted first among cached blocks). */
  void addCachedFirst(KvBlock b) {
    link(b, cached, cached.next);
    b.segment = Segment.CACHED;
    cachedSize++;
  }

  /** The cached block that would be evicted next, or null. */
  KvBlock peekCachedVictim() {
    return cachedSize == 0 ? null : cached.next;
  }

  /** Removes and returns the next block to reuse; null when empty. */
  KvBlock poll() {
    KvBlock b = uncachedSize > 0 ? uncached.next : cachedSize > 0 ? cached.next : null;
    if (b != null) {
      remove(b);
    }
    return b;
  }

  /** Takes a block out of the queue (a prefix hit on a free cached block). */
  void remove(KvBlock b) {
    if (b.segment == null) {
      throw new IllegalStateException(b + " is not in the free queue");
    }
    b.prev.next = b.next;
    b.next.prev = b.prev;
    b.prev = null;
    b.next = null;
    if (b.segment == Segment.UNCACHED) {
      uncachedSize--;
    } else {
      cachedSize--;
    }
    b.segment = null;
  }

  boolean contains(KvBlock b) {
    return b.segment != null;
  }

  private static void link(KvBlock b, KvBlock before, KvBlock after) {
    if (b.segment != null) {
      throw new IllegalStateException(b + " is already in the free queue");
    }
    b.prev = before;
    b.next = after;
    before.next = b;
    after.prev = b;
  }

  /** All queued blocks in reuse order (for invariant checks and tests). */
  List<KvBlock> snapshot() {
    List<KvBlock> out = new ArrayList<>(size());
    for (KvBlock s : new KvBlock[] {uncached, cached}) {
      int guard = 0;
      for (KvBlock b = s.next; b != s; b = b.next) {
        out.add(b);
        if (++guard > size() + 1) {
          throw new IllegalStateException("free queue is cyclic");
        }
      }
    }
    return out;
  }
}
