package io.kvant.engine.kv;

/**
 * Makes the storage behind a {@link KvCacheManager}: the host {@link PagedKvStore} by default, or a
 * device-resident pool (the CUDA backend's), which the manager's block ids index all the same. The
 * manager keeps ownership of allocation, prefix caching and preemption either way.
 */
@FunctionalInterface
public interface KvStoreFactory {
  /**
   * A store of {@code blocks} blocks of {@code config.blockSize()} tokens for a model of shape
   * {@code geometry}, resolving sequence handles through {@code tables}.
   *
   * @throws IllegalArgumentException if the store cannot hold {@code config.type()}
   */
  KvStore create(KvGeometry geometry, KvCacheConfig config, int blocks, BlockTables tables);

  /** The host store, {@link PagedKvStore}. */
  static KvStoreFactory host() {
    return host(KvEncoding.PER_TOKEN);
  }

  /**
   * The host store with {@code encoding} for INT8/FP8 ({@link KvEncoding}); creating an F32 store
   * with another encoding than {@code per-token} throws, and so does one that {@link
   * KvEncoding#needsScales()} (use {@link #host(KvEncoding, KvScales)}).
   */
  static KvStoreFactory host(KvEncoding encoding) {
    return host(encoding, null);
  }

  /**
   * The host store with {@code encoding} and, for the static encodings, the calibrated {@code
   * scales} (null for the others).
   */
  static KvStoreFactory host(KvEncoding encoding, KvScales scales) {
    return (g, c, blocks, tables) ->
        new PagedKvStore(g, c.type(), encoding, scales, c.blockSize(), blocks, tables);
  }
}
