package io.kvant.engine.kv;

/**
 * One physical block of the paged cache: its id (index into the store's arrays), how many block
 * tables hold it, and, once full and computed, its content hash. Links for the intrusive free list.
 * Mutated only by {@link BlockPool} and {@link FreeBlockQueue}, on the engine-loop thread.
 */
final class KvBlock {
  final int id;
  int refCount;
  BlockHash hash;
  KvBlock prev;
  KvBlock next;
  FreeBlockQueue.Segment segment;

  KvBlock(int id) {
    this.id = id;
  }

  @Override
  public String toString() {
    return "KvBlock[" + id + ", ref=" + refCount + (hash == null ? "" : ", cached") + "]";
  }
}
