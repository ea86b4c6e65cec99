package io.kvant.cuda.model;

import io.kvant.engine.model.LayerWeights;
import io.kvant.engine.model.LlamaConfig;
import io.kvant.engine.model.ModelWeights;
import java.util.ArrayList;
import java.util.List;

/**
 * One model version's weights on the device, taken from a {@link DeviceWeightCache} (so tensors
 * shared with other versions are shared on the device too). Closing it releases this version's
 * references; what no other version holds is freed.
 */
public final class DeviceModel implements AutoCloseable {
  /** One block's device weights; a {@code 0} bias address means no bias. */
  public record Layer(
      long attnNorm,
      DeviceTensor wq,
      DeviceTensor wk,
      DeviceTensor wv,
      DeviceTensor wo,
      long qBias,
      long kBias,
      long vBias,
      long ffnNorm,
      DeviceTensor gate,
      DeviceTensor up,
      DeviceTensor down) {}

  private final DeviceWeightCache cache;
  private final LlamaConfig config;
  private final DeviceTensor embedding;
  private final DeviceTensor output;
  private final long outputNorm;
  private final List<Layer> layers;
  private final List<Object> held = new ArrayList<>();
  private io.kvant.engine.tensor.Tensor heldDense;
  private final List<io.kvant.cuda.device.DeviceBuffer> owned;
  private boolean closed;

  /** Weights made on the device (synthetic benchmark models): owned, freed on close. */
  DeviceModel(
      LlamaConfig config,
      DeviceTensor embedding,
      DeviceTensor output,
      long outputNorm,
      List<Layer> layers,
      List<io.kvant.cuda.device.DeviceBuffer> owned) {
    this.cache = null;
    this.config = config;
    this.embedding = embedding;
    this.output = output;
    this.outputNorm = outputNorm;
    this.layers = List.copyOf(layers);
    this.owned = List.copyOf(owned);
  }

  /**
   * Uploads (or shares) every weight of {@code weights}.
   *
   * @throws UnsupportedOperationException naming the type if a matrix is of a type the CUDA backend
   *     does not read; nothing stays referenced then
   */
  public DeviceModel(DeviceWeightCache cache, LlamaConfig config, ModelWeights weights) {
    this.cache = cache;
    this.config = config;
    this.owned = List.of();
    try {
      this.embedding = cache.acquireDense(weights.embedding());
      heldDense = weights.embedding();
      this.output = take(weights.output());
      this.outputNorm = take(weights.outputNorm());
      List<Layer> ls = new ArrayList<>();
      for (LayerWeights w : weights.layers()) {
        ls.add(
            new Layer(
                take(w.attnNorm()),
                take(w.wq()),
                take(w.wk()),
                take(w.wv()),
                take(w.wo()),
                takeOptional(w.qBias()),
                takeOptional(w.kBias()),
                takeOptional(w.vBias()),
                take(w.ffnNorm()),
                take(w.wGate()),
                take(w.wUp()),
                take(w.wDown())));
      }
      this.layers = List.copyOf(ls);
    } catch (RuntimeException e) {
      close();
      throw e;
    }
  }

  private DeviceTensor take(io.kvant.engine.tensor.Tensor t) {
    DeviceTensor d = cache.acquire(t);
    held.add(t);
    return d;
  }

  private long take(float[] v) {
    long p = cache.acquire(v);
    held.add(v);
    return p;
  }

  private long takeOptional(float[] v) {
    return v == null ? 0L : take(v);
  }

  public LlamaConfig config() {
    return config;
  }

  public DeviceTensor embedding() {
    return embedding;
  }

  public DeviceTensor output() {
    return output;
  }

  public long outputNorm() {
    return outputNorm;
  }

  public List<Layer> layers() {
    return layers;
  }

  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    if (cache != null) {
      for (Object o : held) {
        cache.release(o);
      }
      if (heldDense != null) {
        cache.releaseDense(heldDense);
        heldDense = null;
      }
    }
    held.clear();
    owned.forEach(io.kvant.cuda.device.DeviceBuffer::close);
  }
}
