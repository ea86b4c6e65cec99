package io.kvant.engine.kv;

import java.util.List;

/**
 * The longest cached prefix of a token sequence, found by {@link KvCacheManager#findCachedPrefix}.
 * Valid only until the next allocation: pass it to {@link KvCacheManager#open} straight away.
 */
public final class PrefixMatch {
  final List<KvBlock> blocks;
  final BlockHash[] hashes;
  final String extraKey;
  final int queriedTokens;
  private final int cachedTokens;

  PrefixMatch(
      List<KvBlock> blocks, BlockHash[] hashes, String extraKey, int queriedTokens, int blockSize) {
    this.blocks = List.copyOf(blocks);
    this.hashes = hashes;
    this.extraKey = extraKey;
    this.queriedTokens = queriedTokens;
    this.cachedTokens = blocks.size() * blockSize;
  }

  /**
   * Tokens whose KV is already cached (a multiple of the block size, always less than the queried
   * length, so at least one token is left to compute and yield logits).
   */
  public int cachedTokens() {
    return cachedTokens;
  }
}
