package io.kvant.engine.forward;

import io.kvant.engine.kv.KvCacheType;
import io.kvant.engine.kv.KvStoreFactory;
import io.kvant.engine.model.LlamaConfig;
import io.kvant.engine.model.ModelWeights;
import io.kvant.engine.tensor.ComputePool;

/** The CPU backend: {@link Transformer}s on a {@link ComputePool}, KV blocks on the heap. */
public final class CpuBackend implements ComputeBackend {
  private final ComputePool pool;

  /**
   * @param pool the compute threads (not owned: the caller closes it)
   */
  public CpuBackend(ComputePool pool) {
    this.pool = pool;
  }

  @Override
  public String describe() {
    return "cpu (" + pool.threads() + " threads)";
  }

  @Override
  public ForwardPass load(LlamaConfig config, ModelWeights weights) {
    return new Transformer(config, weights, pool);
  }

  @Override
  public KvStoreFactory kvStorage() {
    return KvStoreFactory.host();
  }

  @Override
  public KvCacheType defaultKvType() {
    return KvCacheType.F32;
  }

  @Override
  public void close() {}
}
