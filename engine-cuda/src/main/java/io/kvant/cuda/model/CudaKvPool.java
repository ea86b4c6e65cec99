package io.kvant.cuda.model;

import io.kvant.cuda.device.CudaDevice;
import io.kvant.cuda.device.CudaKernels;
import io.kvant.cuda.device.DeviceBuffer;
import io.kvant.cuda.device.KeyCentering;
import io.kvant.engine.kv.BlockTables;
import io.kvant.engine.kv.KvCacheConfig;
import io.kvant.engine.kv.KvCacheType;
import io.kvant.engine.kv.KvEncoding;
import io.kvant.engine.kv.KvGeometry;
import io.kvant.engine.kv.KvScales;
import io.kvant.engine.kv.KvStore;
import io.kvant.engine.kv.KvStoreFactory;
import java.lang.foreign.MemorySegment;
import java.util.function.Function;

/**
 * The paged KV cache on the device: the blocks that the {@link io.kvant.engine.kv.KvCacheManager}'s
 * block ids index, in one allocation.
 *
 * <p>Layout: {@code [block][layer][k|v][kvHead][slot][headSize]} elements of F32, F16, or int8 /
 * FP8 E4M3 codes, so one (layer, head) run of a block is contiguous for the attention kernel; the
 * coded types keep one F32 scale per (block, layer, k|v, kvHead, slot) in a second region of the
 * same allocation, indexed by element offset / headSize (the CPU store's scheme, so both engines
 * hold the same codes). The coded types are encoded as a {@link KvEncoding} says (those {@link
 * #supports} names); keys per channel ({@link KvEncoding.Scaling#BLOCK_CHANNEL}) keep one F32 scale
 * per (block, layer, kvHead, channel) in a third region ({@link #keyChannelsPtr}). Centered keys
 * ({@link KvEncoding#centersKeys()}) keep the calibrated means of the keys before RoPE, and for
 * {@link KvEncoding#CENTERED_QMSE} the queries' second moments (each matrix transposed, so the
 * encoder's lanes read it coalesced), in a separate allocation made with the pool ({@link
 * #centering}). The manager allocates, shares (prefix caching) and frees blocks on the host; this
 * pool only holds their contents. The CUDA forward pass writes and reads it with its kernels; the
 * host-side {@link KvStore} methods are not available on device memory and throw.
 */
public final class CudaKvPool implements KvStore, AutoCloseable {
  private final KvGeometry geometry;
  private final int dtype;
  private final int blockSize;
  private final int blocks;
  private final BlockTables tables;
  private final DeviceBuffer buffer;
  private final long scalesOffset;
  private final long channelsOffset;
  private final int encodingBits;

  /** Centered keys: the means, then (weighted) the transposed moments; else null. */
  private final DeviceBuffer moments;

  private final long momentsOffset;

  /**
   * @param statistics the calibrated statistics for a centered encoding (key means; query moments
   *     for {@link KvEncoding#CENTERED_QMSE}), else ignored (may be null)
   * @throws IllegalArgumentException if the encoding is not {@link #supports supported}, or a
   *     centered one lacks key moments of this geometry
   */
  CudaKvPool(
      CudaDevice device,
      KvGeometry geometry,
      KvCacheType type,
      KvEncoding encoding,
      KvScales statistics,
      int blockSize,
      int blocks,
      BlockTables tables) {
    boolean centered = type.elementBytes() == 1 && encoding.centersKeys();
    float[][] stats = centered ? centeringStats(geometry, encoding, statistics) : null;
    this.geometry = geometry;
    this.dtype = dtypeOf(type);
    this.encodingBits = type.elementBytes() == 1 ? encodingBits(encoding) : 0;
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
    long channels =
        (encodingBits & CudaKernels.KV_KEY_CHANNELS) == 0
            ? 0
            : (long) (blocks + 1)
                * geometry.layers()
                * geometry.kvHeads()
                * geometry.headSize()
                * Float.BYTES;
    long end = scales == 0 ? codes : scalesOffset + scales;
    this.channelsOffset = channels == 0 ? -1 : (end + 255) / 256 * 256;
    this.buffer = device.allocate(channels == 0 ? end : channelsOffset + channels);
    if (stats == null) {
      moments = null;
      momentsOffset = -1;
    } else {
      long meanBytes = (long) stats[0].length * Float.BYTES;
      momentsOffset = stats.length < 2 ? -1 : (meanBytes + 255) / 256 * 256;
      long total = momentsOffset < 0 ? meanBytes : momentsOffset + 4L * stats[1].length;
      DeviceBuffer b = device.allocate(total);
      try {
        device.uploadTo(b.ptr(), MemorySegment.ofArray(stats[0]));
        if (momentsOffset >= 0) {
          device.uploadTo(b.ptr() + momentsOffset, MemorySegment.ofArray(stats[1]));
        }
      } catch (RuntimeException e) {
        b.close();
        buffer.close();
        throw e;
      }
      moments = b;
    }
  }

  /**
   * The key means (and for a weighing encoding the query moments, each {@code headSize x headSize}
   * matrix transposed) of {@code scales}, checked against {@code g}.
   */
  static float[][] centeringStats(KvGeometry g, KvEncoding encoding, KvScales scales) {
    String name = encoding.optionName();
    if (scales == null || !scales.hasKeyMoments()) {
      throw new IllegalArgumentException(
          name + " needs calibrated key means (KvScaleRecorder with the model's RoPE)");
    }
    if (!scales.geometry().equals(g)) {
      throw new IllegalArgumentException(
          name + ": the KV statistics are for " + scales.geometry() + ", the model is " + g);
    }
    int hs = g.headSize();
    if (hs % 2 != 0 || hs > 256) {
      throw new IllegalArgumentException(
          name + " on the GPU needs an even head size <= 256, got " + hs);
    }
    if (!encoding.weighsKeys()) {
      return new float[][] {scales.keyMean()};
    }
    float[] w = scales.queryMoment();
    float[] t = new float[w.length];
    for (int m = 0; m < w.length; m += hs * hs) {
      for (int i = 0; i < hs; i++) {
        for (int j = 0; j < hs; j++) {
          t[m + j * hs + i] = w[m + i * hs + j];
        }
      }
    }
    return new float[][] {scales.keyMean(), t};
  }

  /**
   * Whether the pool encodes INT8/FP8 as {@code encoding}: per token by absmax or least squared
   * error, keys per channel in the block (KIVI), keys centered by calibrated means (with the
   * statistics given at creation), values per token either way. Not the rotated or the static
   * encodings.
   */
  public static boolean supports(KvEncoding encoding) {
    return !encoding.rotates() && (!encoding.needsScales() || encoding.centersKeys());
  }

  /**
   * Throws unless {@link #supports}{@code (encoding)}.
   *
   * @throws IllegalArgumentException naming the encoding and those the kernels implement
   */
  public static void requireSupported(KvEncoding encoding) {
    if (!supports(encoding)) {
      throw new IllegalArgumentException(
          "kv encoding "
              + encoding.optionName()
              + ": the CUDA backend encodes int8/fp8 KV per-token, per-token-mse, kivi,"
              + " kivi-mse, centered-mse or centered-qmse only");
    }
  }

  /** The kernels' encoding bits of {@code encoding} ({@link CudaKernels#KV_TOKEN_MSE}, ...). */
  static int encodingBits(KvEncoding encoding) {
    requireSupported(encoding);
    boolean mse =
        encoding.valueScaling() == KvEncoding.Scaling.TOKEN_MSE
            || encoding.keyScaling() == KvEncoding.Scaling.TOKEN_MSE;
    boolean channels = encoding.keyScaling() == KvEncoding.Scaling.BLOCK_CHANNEL;
    return (mse ? CudaKernels.KV_TOKEN_MSE : 0)
        | (channels ? CudaKernels.KV_KEY_CHANNELS : 0)
        | (encoding.centersKeys() ? CudaKernels.KV_CENTERED : 0)
        | (encoding.weighsKeys() ? CudaKernels.KV_WEIGHTED : 0);
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
   * A factory for {@link io.kvant.engine.kv.KvCacheManager} that puts the blocks on {@code device},
   * INT8/FP8 encoded as {@code encoding} gives for the type (checked by {@link #supports} at
   * creation), without calibrated statistics (a centered encoding throws at creation).
   */
  public static KvStoreFactory factory(
      CudaDevice device, Function<KvCacheType, KvEncoding> encoding) {
    return factory(device, encoding, null);
  }

  /**
   * As {@link #factory(CudaDevice, Function)}, with the calibrated statistics a centered encoding
   * needs ({@code scales}: key means, and query moments for {@link KvEncoding#CENTERED_QMSE}).
   */
  public static KvStoreFactory factory(
      CudaDevice device, Function<KvCacheType, KvEncoding> encoding, KvScales scales) {
    return new KvStoreFactory() {
      @Override
      public KvStore create(KvGeometry g, KvCacheConfig c, int n, BlockTables t) {
        return new CudaKvPool(
            device, g, c.type(), encoding.apply(c.type()), scales, c.blockSize(), n, t);
      }

      @Override
      public long bytesPerBlock(KvGeometry g, KvCacheConfig c) {
        long bytes = c.bytesPerBlock(g);
        if (c.type().elementBytes() == 1
            && encoding.apply(c.type()).keyScaling() == KvEncoding.Scaling.BLOCK_CHANNEL) {
          bytes += (long) g.layers() * g.kvHeads() * g.headSize() * Float.BYTES;
        }
        return bytes;
      }
    };
  }

  public long ptr() {
    return buffer.ptr();
  }

  /** Device address of the per-(token, head) scales, 0 for the unscaled types. */
  public long scalesPtr() {
    return scalesOffset < 0 ? 0 : buffer.ptr() + scalesOffset;
  }

  /** Device address of the keys' per-channel scales, 0 unless keys are encoded per channel. */
  public long keyChannelsPtr() {
    return channelsOffset < 0 ? 0 : buffer.ptr() + channelsOffset;
  }

  /** Device address of the keys' means before RoPE, 0 unless keys are centered. */
  public long keyMeanPtr() {
    return moments == null ? 0 : moments.ptr();
  }

  /** Device address of the transposed query moments, 0 unless the keys' error is weighted. */
  public long queryMomentPtr() {
    return momentsOffset < 0 ? 0 : moments.ptr() + momentsOffset;
  }

  /**
   * The kernels' {@link KeyCentering} of this pool with the forward pass's RoPE tables ({@code
   * cos}, {@code sin}, {@code style} as {@link CudaKernels#rope}); {@link KeyCentering#NONE} unless
   * keys are centered. Writes and reads rotate by the same tables, so centering stays exact.
   */
  public KeyCentering centering(long cos, long sin, int style) {
    return moments == null
        ? KeyCentering.NONE
        : new KeyCentering(keyMeanPtr(), queryMomentPtr(), cos, sin, style);
  }

  /** The kernels' encoding bits ({@link CudaKernels#KV_TOKEN_MSE}, ...); 0 for the float types. */
  public int encodingBits() {
    return encodingBits;
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
    if (moments != null) {
      moments.close();
    }
  }
}
