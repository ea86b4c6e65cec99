package io.kvant.engine.kv;

/**
 * A point-in-time view of a {@link KvCacheManager}, for metrics.
 *
 * @param totalBlocks blocks in the pool
 * @param freeBlocks blocks not held by any sequence (cached or not)
 * @param cachedBlocks blocks holding a reusable prefix (held or free)
 * @param sequences open sequences
 * @param queriedTokens prompt tokens looked up in the prefix cache
 * @param hitTokens of those, tokens served from the cache
 * @param evictions cached blocks reused for other data
 */
public record KvCacheStats(
    int totalBlocks,
    int freeBlocks,
    int cachedBlocks,
    int sequences,
    long queriedTokens,
    long hitTokens,
    long evictions) {
  /** Fraction of blocks held by sequences, in [0, 1]. */
  public double usage() {
    return totalBlocks == 0 ? 0 : (double) (totalBlocks - freeBlocks) / totalBlocks;
  }

  /** Prefix-cache hit ratio in tokens, in [0, 1]; 0 before any lookup. */
  public double hitRatio() {
    return queriedTokens == 0 ? 0 : (double) hitTokens / queriedTokens;
  }
}
