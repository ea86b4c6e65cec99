package io.kvant.engine.forward;

import io.kvant.engine.kv.KvCacheType;
import io.kvant.engine.kv.KvEncoding;
import io.kvant.engine.kv.KvScales;
import io.kvant.engine.kv.KvStoreFactory;
import io.kvant.engine.model.LlamaConfig;
import io.kvant.engine.model.ModelWeights;

/**
 * Where the forward passes of a process run: the CPU ({@link CpuBackend}) or a device (the CUDA
 * backend of the {@code engine-cuda} module). One backend serves every model version of a process,
 * so versions can share their unchanged weights on it, and makes the storage of the KV cache
 * manager's blocks.
 */
public interface ComputeBackend extends AutoCloseable {
  /** One line for logs, e.g. {@code cpu (2 threads, integer kernels)}. */
  String describe();

  /**
   * The forward pass of one model version (uploading its weights where the backend keeps them
   * elsewhere); close it when the version is released.
   *
   * @throws UnsupportedOperationException naming the type if the backend cannot run a weight type
   */
  ForwardPass load(LlamaConfig config, ModelWeights weights);

  /** Storage for the KV cache manager's blocks. */
  KvStoreFactory kvStorage();

  /**
   * Storage for the KV cache manager's blocks with INT8/FP8 encoded as {@code encoding} says. This
   * default is for a backend that encodes per-token only ({@link KvEncoding#PER_TOKEN}): it refuses
   * any other. The CUDA backend overrides it with the encodings its {@code kv_append} implements.
   *
   * @throws IllegalArgumentException naming the encoding if this backend does not implement it
   */
  default KvStoreFactory kvStorage(KvEncoding encoding) {
    if (encoding != KvEncoding.PER_TOKEN) {
      throw new IllegalArgumentException(
          "kv encoding "
              + encoding.optionName()
              + ": the "
              + describe()
              + " backend encodes int8/fp8 KV per-token only");
    }
    return kvStorage();
  }

  /**
   * As {@link #kvStorage(KvEncoding)}, with the calibrated statistics an encoding that {@link
   * KvEncoding#needsScales()} uses (the centered encodings' key means and query moments). This
   * default takes no statistics: it delegates when {@code scales} is null and refuses otherwise.
   *
   * @throws IllegalArgumentException naming the encoding if this backend does not implement it
   */
  default KvStoreFactory kvStorage(KvEncoding encoding, KvScales scales) {
    if (scales != null) {
      throw new IllegalArgumentException(
          "kv encoding "
              + encoding.optionName()
              + ": the "
              + describe()
              + " backend takes no calibrated KV statistics");
    }
    return kvStorage(encoding);
  }

  /** The encoding {@link #kvStorage()} gives {@code type}. */
  default KvEncoding defaultKvEncoding(KvCacheType type) {
    return KvEncoding.PER_TOKEN;
  }

  /**
   * The encoding to serve {@code type} with when no encoding is configured and {@code calibrated}
   * statistics are at hand (null: none), e.g. from a version folder's {@code
   * kv_calibration.safetensors}. Each backend decides whether the centered encodings they enable
   * are worth it on its kernels; by default the statistics change nothing ({@link
   * #defaultKvEncoding(KvCacheType)}).
   */
  default KvEncoding defaultKvEncoding(KvCacheType type, KvScales calibrated) {
    return defaultKvEncoding(type);
  }

  /** The KV storage type used when the configuration names none. */
  KvCacheType defaultKvType();

  /**
   * Bytes this backend can give the KV cache now, when it can tell (a GPU: from its free memory,
   * after the loaded weights, keeping room for a hot swap); empty where memory is not the backend's
   * to measure (the CPU: the heap and the OS decide).
   *
   * @param weightBytes bytes of the loaded version's weights (a full swap stages that much again)
   */
  default java.util.OptionalLong kvCapacityBytes(long weightBytes) {
    return java.util.OptionalLong.empty();
  }

  @Override
  void close();
}
