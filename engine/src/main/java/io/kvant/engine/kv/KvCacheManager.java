package io.kvant.engine.kv;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The scheduler-facing side of the paged KV cache: opens sequences (block tables) with their
 * longest cached prefix, grows them block by block, registers computed full blocks for prefix reuse
 * and frees them. The forward pass reads and writes through {@link #store()} with the {@code seq}
 * handles returned by {@link #open}.
 *
 * <p>Typical use per request, all on the engine-loop thread:
 *
 * <pre>{@code
 * PrefixMatch m = kv.findCachedPrefix(tokens, n, versionId);   // no side effects
 * int seq = kv.open(m, chunk);          // -1: not enough free blocks, nothing changed
 * ... forward over positions [m.cachedTokens(), m.cachedTokens() + chunk) ...
 * kv.cacheComputed(seq, tokens, computed);
 * if (!kv.grow(seq, computed + next)) { preempt someone }
 * kv.free(seq);
 * }</pre>
 *
 * <p>Not thread-safe (the store's reads are, see {@link PagedKvStore}).
 */
public final class KvCacheManager implements BlockTables {
  private final KvGeometry geometry;
  private final KvCacheConfig config;
  private final int blockSize;
  private final BlockPool pool;
  private final KvStore store;
  private SeqState[] seqs = new SeqState[16];
  private final ArrayDeque<Integer> freeHandles = new ArrayDeque<>();
  private int nextHandle;
  private int open;
  private long queriedTokens;
  private long hitTokens;

  /** Per-sequence block table and hash chain. */
  private static final class SeqState {
    final String extraKey;
    final List<KvBlock> blocks = new ArrayList<>();
    int[] ids = new int[8];
    BlockHash[] hashes;
    int hashedBlocks;

    SeqState(String extraKey, BlockHash[] hashes) {
      this.extraKey = extraKey;
      this.hashes = hashes;
    }

    void add(KvBlock b) {
      if (blocks.size() == ids.length) {
        ids = Arrays.copyOf(ids, ids.length * 2);
      }
      ids[blocks.size()] = b.id;
      blocks.add(b);
    }
  }

  public KvCacheManager(KvGeometry geometry, KvCacheConfig config) {
    this(geometry, config, KvStoreFactory.host());
  }

  /** A manager whose blocks live in the store {@code storage} makes (host or device). */
  public KvCacheManager(KvGeometry geometry, KvCacheConfig config, KvStoreFactory storage) {
    this.geometry = geometry;
    this.config = config;
    this.blockSize = config.blockSize();
    long perBlock = storage.bytesPerBlock(geometry, config);
    int blocks = (int) Math.min(config.budgetBytes() / perBlock, Integer.MAX_VALUE - 8);
    if (blocks < 1) {
      throw new IllegalArgumentException(
          "kv cache budget of "
              + config.budgetBytes()
              + " bytes is below one block ("
              + perBlock
              + " bytes)");
    }
    this.pool = new BlockPool(blocks, EvictionPolicy.create(config.eviction(), blocks));
    this.store = storage.create(geometry, config, blocks, this);
  }

  /** The store the forward pass uses; its {@code seq} handles are those of {@link #open}. */
  public KvStore store() {
    return store;
  }

  public KvGeometry geometry() {
    return geometry;
  }

  public KvCacheConfig config() {
    return config;
  }

  public int blockSize() {
    return blockSize;
  }

  public int totalBlocks() {
    return pool.total();
  }

  /** Blocks that {@link #open} and {@link #grow} can still hand out (includes evictable ones). */
  public int freeBlocks() {
    return pool.freeCount();
  }

  /** Blocks needed to hold {@code tokens} tokens. */
  public int blocksFor(int tokens) {
    return (tokens + blockSize - 1) / blockSize;
  }

  /** The most tokens one sequence could ever hold (the whole cache). */
  public long capacityTokens() {
    return (long) pool.total() * blockSize;
  }

  /**
   * Finds the longest run of cached full blocks that starts {@code tokens[0, numTokens)} under
   * {@code extraKey} (the model version id, plus anything else that changes the KV). At least one
   * token is always left uncached. Changes nothing.
   */
  public PrefixMatch findCachedPrefix(int[] tokens, int numTokens, String extraKey) {
    if (!config.prefixCaching()) {
      return new PrefixMatch(List.of(), new BlockHash[0], extraKey, numTokens, blockSize);
    }
    int full = numTokens / blockSize;
    BlockHash[] hashes = new BlockHash[Math.max(full, 4)];
    BlockHash parent = null;
    for (int i = 0; i < full; i++) {
      parent = BlockHash.of(parent, tokens, i * blockSize, blockSize, extraKey);
      hashes[i] = parent;
    }
    int usable = (numTokens - 1) / blockSize;
    List<KvBlock> hit = new ArrayList<>();
    for (int i = 0; i < usable; i++) {
      KvBlock b = pool.lookup(hashes[i]);
      if (b == null) {
        break;
      }
      hit.add(b);
    }
    return new PrefixMatch(hit, hashes, extraKey, numTokens, blockSize);
  }

  /**
   * Opens a sequence holding {@code match}'s cached blocks plus room for {@code numNewTokens} more
   * tokens, or returns -1 (changing nothing) if the free blocks do not suffice.
   *
   * @throws IllegalStateException if the match went stale (an allocation happened since it was
   *     found)
   */
  public int open(PrefixMatch match, int numNewTokens) {
    int need = blocksFor(match.cachedTokens() + numNewTokens) - match.blocks.size();
    int revived = 0;
    for (int i = 0; i < match.blocks.size(); i++) {
      KvBlock b = match.blocks.get(i);
      if (b.hash == null || !b.hash.equals(match.hashes[i])) {
        throw new IllegalStateException("stale prefix match: block " + b.id + " was evicted");
      }
      if (b.refCount == 0) {
        revived++;
      }
    }
    if (need > pool.freeCount() - revived) {
      return -1;
    }
    SeqState st = new SeqState(match.extraKey, match.hashes);
    for (KvBlock b : match.blocks) {
      pool.touch(b);
      st.add(b);
    }
    st.hashedBlocks = match.blocks.size();
    for (int i = 0; i < need; i++) {
      st.add(pool.allocate());
    }
    for (BlockHash h : match.hashes) {
      if (h != null) {
        pool.policy().recordAccess(h);
      }
    }
    queriedTokens += match.queriedTokens;
    hitTokens += match.cachedTokens();
    int seq = freeHandles.isEmpty() ? nextHandle++ : freeHandles.poll();
    if (seq >= seqs.length) {
      seqs = Arrays.copyOf(seqs, seqs.length * 2);
    }
    seqs[seq] = st;
    open++;
    return seq;
  }

  /**
   * Ensures {@code seq} can hold {@code totalTokens}; false (nothing changed) if blocks run out.
   */
  public boolean grow(int seq, int totalTokens) {
    SeqState st = state(seq);
    int need = blocksFor(totalTokens) - st.blocks.size();
    if (need <= 0) {
      return true;
    }
    if (need > pool.freeCount()) {
      return false;
    }
    for (int i = 0; i < need; i++) {
      st.add(pool.allocate());
    }
    return true;
  }

  /**
   * Registers the full blocks among the first {@code numComputed} tokens of {@code seq} (whose KV
   * the forward pass has written) in the prefix cache. {@code tokens} are the sequence's tokens
   * (prompt, then generated), at least {@code numComputed} of them.
   */
  public void cacheComputed(int seq, int[] tokens, int numComputed) {
    if (!config.prefixCaching()) {
      return;
    }
    SeqState st = state(seq);
    int full = Math.min(numComputed / blockSize, st.blocks.size());
    if (full > st.hashes.length) {
      st.hashes = Arrays.copyOf(st.hashes, Math.max(full, st.hashes.length * 2));
    }
    for (int i = st.hashedBlocks; i < full; i++) {
      if (st.hashes[i] == null) {
        BlockHash parent = i == 0 ? null : st.hashes[i - 1];
        st.hashes[i] = BlockHash.of(parent, tokens, i * blockSize, blockSize, st.extraKey);
      }
      pool.cache(st.blocks.get(i), st.hashes[i]);
    }
    st.hashedBlocks = Math.max(st.hashedBlocks, full);
  }

  /** Releases the sequence's blocks (cached ones stay reusable until evicted) and its handle. */
  public void free(int seq) {
    SeqState st = state(seq);
    pool.release(st.blocks);
    seqs[seq] = null;
    freeHandles.add(seq);
    open--;
  }

  /** Blocks currently in {@code seq}'s table. */
  @Override
  public int blocksOf(int seq) {
    return state(seq).blocks.size();
  }

  @Override
  public int blockId(int seq, int index) {
    SeqState st = state(seq);
    if (index >= st.blocks.size()) {
      throw new IndexOutOfBoundsException(
          "sequence " + seq + " has " + st.blocks.size() + " blocks, block " + index + " read");
    }
    return st.ids[index];
  }

  private SeqState state(int seq) {
    SeqState st = seq >= 0 && seq < seqs.length ? seqs[seq] : null;
    if (st == null) {
      throw new IllegalArgumentException("no open sequence " + seq);
    }
    return st;
  }

  public KvCacheStats stats() {
    return new KvCacheStats(
        pool.total(),
        pool.freeCount(),
        pool.cachedCount(),
        open,
        queriedTokens,
        hitTokens,
        pool.evictions());
  }

  /**
   * Throws {@link IllegalStateException} if any block's reference count differs from the number of
   * open block tables holding it, or the free queue or hash index is inconsistent.
   */
  public void checkInvariants() {
    int[] refs = new int[pool.total()];
    int counted = 0;
    for (SeqState st : seqs) {
      if (st != null) {
        counted++;
        for (KvBlock b : st.blocks) {
          refs[b.id]++;
        }
      }
    }
    if (counted != open) {
      throw new IllegalStateException(counted + " sequences found, " + open + " counted open");
    }
    pool.checkInvariants(refs);
  }
}
