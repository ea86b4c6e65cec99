package io.kvant.engine.forward;

import io.kvant.engine.kv.KvCacheType;
import io.kvant.engine.kv.KvEncoding;
import io.kvant.engine.kv.KvStoreFactory;
import io.kvant.engine.model.LlamaConfig;
import io.kvant.engine.model.ModelWeights;
import io.kvant.engine.tensor.ComputePool;

/**
 * The CPU backend: {@link Transformer}s on a {@link ComputePool}, KV blocks on the heap.
 *
 * <p>Kernels: {@link MatmulKernels#INTEGER} by default (int8 activations against Q8_0, Q4_0, INT8
 * and INT4 weights, the output head's largest logits again in float; float for every other type),
 * which is about 2-3x faster at decode than the float kernels on those weights and agrees with them
 * (docs/DECISIONS.md, issue 18). The integer repacking of a tensor is made once and shared by every
 * version loaded here that holds the same tensor.
 */
public final class CpuBackend implements ComputeBackend {
  private final ComputePool pool;
  private final MatmulKernels kernels;
  private final WeightPacks packs = new WeightPacks();

  /**
   * A backend on the default {@link MatmulKernels#INTEGER} kernels.
   *
   * @param pool the compute threads (not owned: the caller closes it)
   */
  public CpuBackend(ComputePool pool) {
    this(pool, MatmulKernels.INTEGER);
  }

  /**
   * @param pool the compute threads (not owned: the caller closes it)
   * @param kernels the matmul kernels of every forward pass this backend loads
   */
  public CpuBackend(ComputePool pool, MatmulKernels kernels) {
    this.pool = pool;
    this.kernels = java.util.Objects.requireNonNull(kernels, "kernels");
  }

  @Override
  public String describe() {
    return "cpu ("
        + pool.threads()
        + " threads, "
        + kernels.name().toLowerCase(java.util.Locale.ROOT)
        + " kernels)";
  }

  @Override
  public ForwardPass load(LlamaConfig config, ModelWeights weights) {
    return new Transformer(config, weights, pool, null, kernels, packs);
  }

  /** Tensors whose packing this backend holds (for tests). */
  int packedTensors() {
    return packs.size();
  }

  /** The host store with each type's {@link KvEncoding#cpuDefault} encoding. */
  @Override
  public KvStoreFactory kvStorage() {
    return KvStoreFactory.cpuDefault();
  }

  /**
   * The host store with {@code encoding} (one that {@link KvEncoding#needsScales()} throws when the
   * store is made: calibrated scales and key means are not the backend's to know; {@code eval}
   * builds such a store itself).
   */
  @Override
  public KvStoreFactory kvStorage(KvEncoding encoding) {
    return KvStoreFactory.host(encoding);
  }

  /** The host store with {@code encoding} and its calibrated {@code scales} (null: none). */
  @Override
  public KvStoreFactory kvStorage(KvEncoding encoding, io.kvant.engine.kv.KvScales scales) {
    return scales == null ? KvStoreFactory.host(encoding) : KvStoreFactory.host(encoding, scales);
  }

  @Override
  public KvEncoding defaultKvEncoding(KvCacheType type) {
    return KvEncoding.cpuDefault(type);
  }

  /**
   * {@link KvEncoding#cpuDefault(KvCacheType, boolean)}: FP8 is {@code centered-qmse} when {@code
   * calibrated} has key moments (the measured best for quality; a key write costs 2x to 4.4x {@code
   * per-token-mse}'s at head size 8 to 32, microseconds per token and layer, perf/RESULTS.md
   * "Centered keys for FP8 KV").
   */
  @Override
  public KvEncoding defaultKvEncoding(KvCacheType type, io.kvant.engine.kv.KvScales calibrated) {
    return KvEncoding.cpuDefault(type, calibrated != null && calibrated.hasKeyMoments());
  }

  @Override
  public KvCacheType defaultKvType() {
    return KvCacheType.F32;
  }

  @Override
  public void close() {}
}
