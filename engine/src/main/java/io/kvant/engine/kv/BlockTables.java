package io.kvant.engine.kv;

/**
 * Resolves a sequence handle's logical block to a physical block id (read by the store). The {@link
 * KvCacheManager} is the one implementation; stores, host or device, read it between steps.
 */
public interface BlockTables {
  /** Number of blocks sequence {@code seq} holds now. */
  int blocksOf(int seq);

  /**
   * Physical block holding logical block {@code index} of sequence {@code seq}.
   *
   * @throws IndexOutOfBoundsException if the sequence has no such block
   */
  int blockId(int seq, int index);
}
