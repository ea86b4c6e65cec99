package io.kvant.engine.kv;

/**
 * Settings of a paged KV cache.
 *
 * @param type storage precision
 * @param blockSize tokens per block (16 is the usual choice)
 * @param budgetBytes memory for K and V of all blocks; the block count is {@code budgetBytes /
 *     bytesPerBlock}
 * @param eviction order in which cached, unreferenced blocks are reused
 * @param prefixCaching whether full blocks are shared between requests by content hash
 */
public record KvCacheConfig(
    KvCacheType type,
    int blockSize,
    long budgetBytes,
    EvictionPolicyKind eviction,
    boolean prefixCaching) {
  /** The default block size, in tokens. */
  public static final int DEFAULT_BLOCK_SIZE = 16;

  public KvCacheConfig {
    if (type == null || eviction == null) {
      throw new IllegalArgumentException("kv cache type and eviction policy must be set");
    }
    if (blockSize <= 0) {
      throw new IllegalArgumentException("block size must be positive, got " + blockSize);
    }
    if (budgetBytes <= 0) {
      throw new IllegalArgumentException("kv cache budget must be positive, got " + budgetBytes);
    }
  }

  /** A config with the default block size, TinyLFU eviction and prefix caching on. */
  public static KvCacheConfig of(KvCacheType type, long budgetBytes) {
    return new KvCacheConfig(
        type, DEFAULT_BLOCK_SIZE, budgetBytes, EvictionPolicyKind.TINY_LFU, true);
  }

  /** Bytes per block for a model of this shape. */
  public long bytesPerBlock(KvGeometry geometry) {
    return blockSize * geometry.bytesPerToken(type);
  }

  /** Number of blocks the budget buys for a model of this shape. */
  public int blocks(KvGeometry geometry) {
    long n = budgetBytes / bytesPerBlock(geometry);
    return (int) Math.min(n, Integer.MAX_VALUE - 8);
  }
}
