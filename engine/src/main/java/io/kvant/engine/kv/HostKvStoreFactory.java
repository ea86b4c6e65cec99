package io.kvant.engine.kv;

import java.util.function.Function;

/**
 * {@link KvStoreFactory} of {@link PagedKvStore}s: the encoding per storage type, and the scales
 * the static encodings need (else null).
 */
record HostKvStoreFactory(Function<KvCacheType, KvEncoding> encoding, KvScales scales)
    implements KvStoreFactory {
  @Override
  public KvStore create(KvGeometry geometry, KvCacheConfig config, int blocks, BlockTables tables) {
    return new PagedKvStore(
        geometry,
        config.type(),
        encoding.apply(config.type()),
        scales,
        config.blockSize(),
        blocks,
        tables);
  }

  @Override
  public long bytesPerBlock(KvGeometry geometry, KvCacheConfig config) {
    return PagedKvStore.bytesPerBlock(
        geometry, config.type(), encoding.apply(config.type()), config.blockSize());
  }
}
