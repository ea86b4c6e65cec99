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

  /**
   * Bytes one block of this storage takes (what the manager divides its budget by): by default
   * {@link KvCacheConfig#bytesPerBlock}, one scale per token for the quantized types; the host
   * store counts the scales its encoding keeps ({@link PagedKvStore#bytesPerBlock}).
   */
  default long bytesPerBlock(KvGeometry geometry, KvCacheConfig config) {
    return config.bytesPerBlock(geometry);
  }

  /**
   * The host store, {@link PagedKvStore}, encoding INT8/FP8 {@link KvEncoding#PER_TOKEN}: the
   * encoding the CUDA backend implements too (its CPU-comparison tests build on this one).
   */
  static KvStoreFactory host() {
    return host(KvEncoding.PER_TOKEN);
  }

  /** The host store with each type's {@link KvEncoding#cpuDefault} encoding: the CPU's default. */
  static KvStoreFactory cpuDefault() {
    return new HostKvStoreFactory(KvEncoding::cpuDefault, null);
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
    return new HostKvStoreFactory(t -> encoding, scales);
  }
}
