package io.kvant.perf.decode;

import io.kvant.engine.kv.ContiguousKvStore;
import io.kvant.engine.kv.EvictionPolicyKind;
import io.kvant.engine.kv.KvCacheConfig;
import io.kvant.engine.kv.KvCacheManager;
import io.kvant.engine.kv.KvCacheType;
import io.kvant.engine.kv.KvGeometry;
import io.kvant.engine.kv.KvStore;
import io.kvant.engine.model.LlamaConfig;
import java.util.Locale;

/**
 * The KV store a CPU decode benchmark attends over. {@link #PAGED} is the one the server decodes
 * into on the CPU (F32 blocks of {@link KvCacheConfig#DEFAULT_BLOCK_SIZE} tokens, keys stored
 * channel-major within a block, so a query scores a vector of tokens per instruction); {@link
 * #CONTIGUOUS} is the reference store (one row-major key per token, one dot product each).
 */
public enum BenchKv {
  PAGED,
  CONTIGUOUS;

  /** Sequence slots in one store, for a benchmark's sequences. */
  public interface Slots {
    KvStore store();

    /** A fresh, empty sequence handle with room for the capacity given at open. */
    int acquire();

    void release(int handle);
  }

  /** Parses {@code --kv-store}'s value ("paged" or "contiguous"). */
  public static BenchKv parse(String name) {
    return switch (name.toLowerCase(Locale.ROOT)) {
      case "paged" -> PAGED;
      case "contiguous" -> CONTIGUOUS;
      default ->
          throw new IllegalArgumentException(
              "--kv-store: must be paged or contiguous, got " + name);
    };
  }

  /** The option's name for this store. */
  public String optionName() {
    return name().toLowerCase(Locale.ROOT);
  }

  /**
   * A store for up to {@code sequences} sequences open at once, each of up to {@code tokens}
   * positions.
   */
  public Slots open(LlamaConfig c, int sequences, int tokens) {
    if (this == CONTIGUOUS) {
      ContiguousKvStore kv =
          new ContiguousKvStore(c.layers(), c.kvHeads(), c.headSize(), tokens, sequences);
      return new Slots() {
        @Override
        public KvStore store() {
          return kv;
        }

        @Override
        public int acquire() {
          return kv.acquire();
        }

        @Override
        public void release(int handle) {
          kv.release(handle);
        }
      };
    }
    KvGeometry g = new KvGeometry(c.layers(), c.kvHeads(), c.headSize());
    int block = KvCacheConfig.DEFAULT_BLOCK_SIZE;
    long blocks = (long) sequences * ((tokens + block - 1) / block);
    // prefix caching off: every sequence starts empty, as a benchmark's BOS-only prompts need
    KvCacheManager m =
        new KvCacheManager(
            g,
            new KvCacheConfig(
                KvCacheType.F32,
                block,
                blocks * block * g.bytesPerToken(KvCacheType.F32),
                EvictionPolicyKind.LRU,
                false));
    return new Slots() {
      @Override
      public KvStore store() {
        return m.store();
      }

      @Override
      public int acquire() {
        int seq = m.open(m.findCachedPrefix(new int[0], 0, "bench"), tokens);
        if (seq < 0) {
          throw new IllegalStateException("no KV blocks left for another sequence");
        }
        return seq;
      }

      @Override
      public void release(int handle) {
        m.free(handle);
      }
    };
  }
}
