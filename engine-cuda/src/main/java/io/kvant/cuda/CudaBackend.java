package io.kvant.cuda;

import io.kvant.cuda.device.CudaDevice;
import io.kvant.cuda.device.CudaKernels;
import io.kvant.cuda.device.CudaOptions;
import io.kvant.cuda.device.Gemm;
import io.kvant.cuda.model.CudaKvPool;
import io.kvant.cuda.model.CudaTransformer;
import io.kvant.cuda.model.DeviceModel;
import io.kvant.cuda.model.DeviceWeightCache;
import io.kvant.engine.forward.ComputeBackend;
import io.kvant.engine.kv.KvCacheType;
import io.kvant.engine.kv.KvEncoding;
import io.kvant.engine.kv.KvStoreFactory;
import io.kvant.engine.model.LlamaConfig;
import io.kvant.engine.model.ModelWeights;
import io.kvant.engine.tensor.ComputePool;

/**
 * The CUDA backend of the engine: one device with its compiled kernels, its cuBLASLt plans and the
 * weights of every model version loaded on it.
 *
 * <p>Use: {@link #open} once per process, {@link #load} per model version (the result is the
 * version's forward pass; close it when the version is released), and {@link #kvStorage()} for the
 * KV cache manager. Versions share unchanged tensors on the device through one {@link
 * DeviceWeightCache}.
 */
public final class CudaBackend implements ComputeBackend {
  private final CudaDevice device;
  private final CudaKernels kernels;
  private final Gemm gemm;
  private final DeviceWeightCache weights;
  private final boolean graphs;
  private final int w8a8MinRows;
  private final ComputePool hostPool;

  private CudaBackend(
      CudaDevice device,
      boolean graphs,
      int w8a8MinRows,
      boolean tileEightBit,
      ComputePool hostPool) {
    this.device = device;
    this.graphs = graphs;
    this.w8a8MinRows = w8a8MinRows;
    this.hostPool = hostPool;
    try {
      this.kernels = new CudaKernels(device);
      this.gemm = new Gemm(device);
      this.weights = new DeviceWeightCache(device, tileEightBit);
    } catch (RuntimeException e) {
      device.close();
      throw e;
    }
  }

  /**
   * Opens the device and compiles (or loads from the cache) the kernels.
   *
   * @throws io.kvant.cuda.driver.CudaUnavailableException one line saying why there is no CUDA
   */
  public static CudaBackend open(CudaOptions options) {
    return open(options, null);
  }

  /**
   * {@link #open(CudaOptions)}, with host threads for the versions' work between steps ({@link
   * CudaTransformer#setHostPool}; the pool stays the caller's to close, after this backend).
   */
  public static CudaBackend open(CudaOptions options, ComputePool hostPool) {
    return new CudaBackend(
        CudaDevice.open(options),
        options.graphs(),
        options.w8a8MinRows(),
        options.tilesEightBit(),
        hostPool);
  }

  /**
   * A model version on the device: uploads what the device does not hold yet. Closing the result
   * releases the version's references (what no other version shares is freed).
   */
  @Override
  public CudaTransformer load(LlamaConfig config, ModelWeights modelWeights) {
    DeviceModel m = new DeviceModel(weights, config, modelWeights);
    try {
      CudaTransformer t = new CudaTransformer(device, kernels, gemm, m, graphs);
      t.setW8a8MinRows(w8a8MinRows);
      t.setHostPool(hostPool);
      return t;
    } catch (RuntimeException e) {
      m.close();
      throw e;
    }
  }

  @Override
  public String describe() {
    return "cuda: " + device.describe();
  }

  @Override
  public KvCacheType defaultKvType() {
    return KvCacheType.F16;
  }

  /** The cuBLASLt plans shared by the versions' forward passes. */
  public Gemm gemm() {
    return gemm;
  }

  /**
   * Puts the KV cache manager's blocks in device memory, INT8/FP8 encoded by {@link
   * #defaultKvEncoding}.
   */
  @Override
  public KvStoreFactory kvStorage() {
    return CudaKvPool.factory(device, this::defaultKvEncoding);
  }

  /**
   * The device's blocks with INT8/FP8 encoded as {@code encoding}: per-token, per-token-mse, kivi
   * and kivi-mse ({@link CudaKvPool#supports}); the rotated and static encodings are refused, and
   * the centered ones need {@link #kvStorage(KvEncoding, io.kvant.engine.kv.KvScales)}.
   *
   * @throws IllegalArgumentException naming the encoding if the kernels do not implement it
   */
  @Override
  public KvStoreFactory kvStorage(KvEncoding encoding) {
    return kvStorage(encoding, null);
  }

  /**
   * As {@link #kvStorage(KvEncoding)}, with the calibrated statistics of a centered encoding
   * ({@code centered-mse}, {@code centered-qmse}): the pool uploads the key means (and query
   * moments) when it is created; a centered encoding without them throws then.
   */
  @Override
  public KvStoreFactory kvStorage(KvEncoding encoding, io.kvant.engine.kv.KvScales scales) {
    CudaKvPool.requireSupported(encoding);
    return CudaKvPool.factory(device, t -> encoding, scales);
  }

  /**
   * The CPU's default without statistics ({@link KvEncoding#cpuDefault}): kivi for INT8,
   * per-token-mse for FP8.
   */
  @Override
  public KvEncoding defaultKvEncoding(KvCacheType type) {
    return KvEncoding.cpuDefault(type);
  }

  /**
   * The CPU's rule ({@link KvEncoding#cpuDefault(KvCacheType, boolean)}): FP8 is {@code
   * centered-qmse} when {@code calibrated} has key moments (the served folder's {@code
   * kv_calibration.safetensors}), so one artifact gives the same KV codes on both engines and FP8
   * KV stays within the quality bar on every real model (on the GPU, stories260K: 99.69% top-1
   * excluding near ties against per-token-mse's 97.47%, perf/RESULTS.md session 45). Its cost on an
   * H100 since session 45's search and decode attention: an 8B INT4 step at one row 0.70x
   * per-token-mse's (242.8 against 348.6 tok/s), BF16 at 1,024-token prompts 0.85x; a step that
   * must be faster names {@code --kv-encoding per-token-mse}, or takes INT8 KV ({@code kivi}: the
   * same bytes, 99.69% or better, no statistics).
   */
  @Override
  public KvEncoding defaultKvEncoding(KvCacheType type, io.kvant.engine.kv.KvScales calibrated) {
    return kvDefault(type, calibrated);
  }

  /** {@link #defaultKvEncoding(KvCacheType, io.kvant.engine.kv.KvScales)}, no device needed. */
  static KvEncoding kvDefault(KvCacheType type, io.kvant.engine.kv.KvScales calibrated) {
    return KvEncoding.cpuDefault(type, calibrated != null && calibrated.hasKeyMoments());
  }

  public CudaDevice device() {
    return device;
  }

  public CudaKernels kernels() {
    return kernels;
  }

  /**
   * The KV budget {@code --kv-cache-mb auto} gets: 90% of the device's free memory after keeping
   * room for one more copy of the weights (a full-version hot swap uploads it before the old one is
   * released) and 2 GiB for activations, the quantized-product tile and graphs.
   */
  @Override
  public java.util.OptionalLong kvCapacityBytes(long weightBytes) {
    device.makeCurrent();
    return java.util.OptionalLong.of(kvBudget(device.memoryInfo()[0], weightBytes));
  }

  /** The policy of {@link #kvCapacityBytes}: a pure function of free and weight bytes. */
  public static long kvBudget(long freeBytes, long weightBytes) {
    long usable = freeBytes - weightBytes - (2L << 30);
    return usable <= 0 ? 0 : (long) (usable * 0.9);
  }

  public DeviceWeightCache weightCache() {
    return weights;
  }

  @Override
  public void close() {
    gemm.close();
    device.close();
  }
}
