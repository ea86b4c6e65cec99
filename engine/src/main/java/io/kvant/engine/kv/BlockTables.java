package io.kvant.engine.kv;

/** Resolves a sequence handle's logical block to a physical block id (read by the store). */
interface BlockTables {
  /**
   * Physical block holding logical block {@code index} of sequence {@code seq}.
   *
   * @throws IndexOutOfBoundsException if the sequence has no such block
   */
  int blockId(int seq, int index);
}
