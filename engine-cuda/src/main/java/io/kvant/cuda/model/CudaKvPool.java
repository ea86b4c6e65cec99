package io.kvant.cuda.model;

import io.kvant.cuda.device.CudaDevice;
import io.kvant.cuda.device.CudaKernels;
import io.kvant.cuda.device.DeviceBuffer;
import io.kvant.engine.kv.BlockTables;
import io.kvant.engine.kv.KvCacheType;
import io.kvant.engine.kv.KvGeometry;
import io.kvant.engine.kv.KvStore;
import io.kvant.engine.kv.KvStoreFactory;

/**
 * The paged KV cache on the device: the blocks that the {@link io.kvant.engine.kv.KvCacheManager}'s
 * block ids index, in one allocation.
 *
 * <p>Layout: {@code [block][layer][k|v][kvHead][slot][headSize]} elements of F32, F16, or int8 /
 * FP8 E4M3 codes, so one (layer, head) run of a block is contiguous for the attention kernel; the
 * coded types keep one F32 scale per (block, layer, k|v, kvHead, slot) in a second region of the
 * same allocation, indexed by element offset / headSize (the CPU store's scheme, so both engines
 * hold the same codes). The manager allocates, shares (prefix caching) and frees blocks on the
 * host; this pool only holds their contents. The CUDA forward pass writes and reads it with its
 * kernels; the host-side {@link KvStore} methods are not available on device memory and throw.
 */
public final class CudaKvPool implements KvStore, AutoCloseable {
  private final KvGeometry geometry;
  private final int dtype;
  private final int blockSize;
  private final int blocks;
  private final BlockTables tables;
  private final DeviceBuffer buffer;
  private final long scalesOffset;

  CudaKvPool(
      CudaDevice device,
      KvGeometry geometry,
      KvCacheType type,
      int blockSize,
      int blocks,
      BlockTables tables) {
    this.geometry = geometry;
    this.dtype = dtypeOf(type);
    this.blockSize = blockSize;
    this.blocks = blocks;
    this.tables = tables;
    // One block more than the manager hands out: the spare block that padding rows of a
    // captured decode graph write and read, so they never touch a sequence's blocks.
    long tokens = (long) (blocks + 1) * blockSize;
    long codes =
        tokens
            * 2L
            * geometry.layers()
            * geometry.kvHeads()
            * geometry.headSize()
            * type.elementBytes();
    long scales = tokens * 2L * geometry.layers() * geometry.kvHeads() * type.scaleBytes();
    this.scalesOffset = type.scaleBytes() == 0 ? -1 : (codes + 255) / 256 * 256;
    this.buffer = device.allocate(scales == 0 ? codes : scalesOffset + scales);
  }

  static int dtypeOf(KvCacheType type) {
    return switch (type) {
      case F32 -> CudaKernels.DT_F32;
      case F16 -> CudaKernels.DT_F16;
      case INT8 -> CudaKernels.DT_KV_I8;
      case FP8_E4M3 -> CudaKernels.DT_KV_E4M3;
    };
  }

  /**
   * A factory for {@link io.kvant.engine.kv.KvCacheManager} that puts the blocks on {@code device}.
   */
  public static KvStoreFactory factory(CudaDevice device) {
    return (g, c, n, t) -> new CudaKvPool(device, g, c.type(), c.blockSize(), n, t);
  }

  public long ptr() {
    return buffer.ptr();
  }

  /** Device address of the per-(token, head) scales, 0 for the unscaled types. */
  public long scalesPtr() {
    return scalesOffset < 0 ? 0 : buffer.ptr() + scalesOffset;
  }

  public int dtype() {
    return dtype;
  }

  public int blockSize() {
    return blockSize;
  }

  public int blocks() {
    return blocks;
  }

  /** The block id past the manager's range that padding rows use (see the constructor). */
  int spareBlock() {
    return blocks;
  }

  public KvGeometry geometry() {
    return geometry;
  }

  BlockTables tables() {
    return tables;
  }

  /** Device bytes held. */
  public long bytes() {
    return buffer.bytes();
  }

  @Override
  public int kvHeads() {
    return geometry.kvHeads();
  }

  @Override
  public int headSize() {
    return geometry.headSize();
  }

  private static UnsupportedOperationException deviceOnly() {
    return new UnsupportedOperationException(
        "the CUDA KV pool lives in device memory: only the CUDA forward pass reads and writes it");
  }

  @Override
  public void write(int seq, int layer, int pos, float[] k, int kOff, float[] v, int vOff) {
    throw deviceOnly();
  }

  @Override
  public void keyScores(int seq, int layer, int kvHead, float[] q, int qOff, int len, float[] s) {
    throw deviceOnly();
  }

  @Override
  public void addWeightedValues(
      int seq, int layer, int kvHead, float[] weights, int len, float[] out, int outOff) {
    throw deviceOnly();
  }

  @Override
  public void close() {
    buffer.close();
  }
}
