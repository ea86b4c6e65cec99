package io.kvant.engine.tokenizer;

import java.util.Arrays;

/**
 * Byte-level BPE merges: (left id, right id) to the packed {@link BpeMerger#candidate candidate}
 * (rank, merged id). Open addressing over primitive arrays, because the lookup runs for every
 * adjacent pair during encoding and real tables hold hundreds of thousands of merges.
 */
final class MergeTable {
  private static final long EMPTY = -1L; // no pair of non-negative ids packs to -1

  private final long[] keys;
  private final long[] values;
  private final int mask;

  /**
   * @param capacity the most merges that will be {@link #put}
   */
  MergeTable(int capacity) {
    int size = Integer.highestOneBit(Math.max(4, capacity) * 2 - 1) << 1;
    keys = new long[size];
    values = new long[size];
    mask = size - 1;
    Arrays.fill(keys, EMPTY);
  }

  /** Adds a merge unless the pair already has one (the first, best-ranked merge wins). */
  void put(int left, int right, int rank, int merged) {
    long key = key(left, right);
    int slot = slot(key);
    while (keys[slot] != EMPTY) {
      if (keys[slot] == key) {
        return;
      }
      slot = (slot + 1) & mask;
    }
    keys[slot] = key;
    values[slot] = BpeMerger.candidate(rank, merged);
  }

  /** The packed candidate for the pair, or {@link BpeMerger#NO_MERGE}. */
  long get(int left, int right) {
    if (left < 0 || right < 0) {
      return BpeMerger.NO_MERGE;
    }
    long key = key(left, right);
    for (int slot = slot(key); keys[slot] != EMPTY; slot = (slot + 1) & mask) {
      if (keys[slot] == key) {
        return values[slot];
      }
    }
    return BpeMerger.NO_MERGE;
  }

  private static long key(int left, int right) {
    return ((long) left << 32) | (right & 0xFFFFFFFFL);
  }

  private int slot(long key) {
    long h = key * 0x9E3779B97F4A7C15L;
    return (int) (h >>> 32) & mask;
  }
}
