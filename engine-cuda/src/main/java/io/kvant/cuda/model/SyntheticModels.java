package io.kvant.cuda.model;

import io.kvant.cuda.device.CudaDevice;
import io.kvant.cuda.device.CudaKernels;
import io.kvant.cuda.device.DeviceBuffer;
import io.kvant.engine.model.LlamaConfig;
import java.util.ArrayList;
import java.util.List;

/**
 * Models of real shapes with random weights made directly on the device, for benchmarks: a
 * Llama-3-8B in BF16 is 16 GB, which would take minutes to write, read and upload from a file,
 * while the speed of a forward pass does not depend on the values (uniform in a small range, so
 * activations stay finite).
 */
public final class SyntheticModels {
  private SyntheticModels() {}

  /**
   * A model of shape {@code c} with every matrix in {@code dtype} ({@link CudaKernels} code) and
   * tied embeddings when {@code tied}.
   */
  public static DeviceModel create(
      CudaDevice device, CudaKernels k, LlamaConfig c, int dtype, boolean tied, long seed) {
    Maker m = new Maker(device, k, seed);
    DeviceTensor emb = m.dense(dtype, c.vocabSize(), c.dim());
    return m.model(
        c,
        emb,
        tied ? emb : m.dense(dtype, c.vocabSize(), c.dim()),
        (r, n) -> m.dense(dtype, r, n));
  }

  /**
   * A model of shape {@code c} with every layer matrix and the output in {@code kind}, the
   * embedding in BF16 (not tied: the output is quantized on its own).
   */
  public static DeviceModel createQuantized(
      CudaDevice device, CudaKernels k, LlamaConfig c, QuantKind kind, long seed) {
    return createQuantized(device, k, c, kind, seed, true);
  }

  /**
   * As {@link #createQuantized(CudaDevice, CudaKernels, LlamaConfig, QuantKind, long)}, codes in
   * the tiled layout ({@code mq4}, {@code mq8}) where the shape allows only when {@code tiled},
   * else in the row-major one ({@code mgemv}).
   */
  public static DeviceModel createQuantized(
      CudaDevice device, CudaKernels k, LlamaConfig c, QuantKind kind, long seed, boolean tiled) {
    Maker m = new Maker(device, k, seed);
    m.tiled = tiled;
    DeviceTensor emb = m.dense(CudaKernels.DT_BF16, c.vocabSize(), c.dim());
    return m.model(
        c, emb, m.quantized(kind, c.vocabSize(), c.dim()), (r, n) -> m.quantized(kind, r, n));
  }

  /** Makes random device weights, each from its own seed, and keeps their buffers. */
  private static final class Maker {
    private final CudaDevice device;
    private final CudaKernels k;
    private final List<DeviceBuffer> owned = new ArrayList<>();
    private long seed;
    private boolean tiled = true;

    Maker(CudaDevice device, CudaKernels k, long seed) {
      this.device = device;
      this.k = k;
      this.seed = seed;
    }

    private DeviceBuffer allocate(long bytes) {
      DeviceBuffer b = device.allocate(bytes);
      owned.add(b);
      return b;
    }

    DeviceTensor dense(int dtype, int rows, int cols) {
      long count = (long) rows * cols;
      DeviceBuffer b = allocate(count * (dtype == CudaKernels.DT_F32 ? 4 : 2));
      k.fillUniform(b.ptr(), dtype, count, seed++, (float) (1 / Math.sqrt(cols)));
      return new DeviceTensor(b, dtype, rows, cols);
    }

    DeviceTensor quantized(QuantKind kind, int rows, int cols) {
      int group = kind.group == 0 ? cols : kind.group;
      int groups = (cols + group - 1) / group;
      boolean tile = tiled && QuantizedLayout.tiles(kind.bits, kind.format, cols, group, groups);
      int rowBytes = kind.bits == 8 ? cols : (cols + 1) / 2;
      int ldw = tile ? rowBytes : QuantizedLayout.align16(rowBytes);
      long codeBytes = (tile ? (rows + 15L) / 16 * 16 : rows) * ldw;
      DeviceBuffer codes = allocate(codeBytes);
      k.fillBytes(codes.ptr(), codeBytes, seed++, kind.mask);
      DeviceBuffer scales = allocate(4L * rows * groups);
      // Scales of either sign: only their size matters for keeping activations finite.
      float unit = kind.bits == 8 ? (kind.format == 0 ? 1f / 127 : 1f / 448) : 1f / 7;
      k.fillUniform(
          scales.ptr(),
          CudaKernels.DT_F32,
          (long) rows * groups,
          seed++,
          (float) (unit / Math.sqrt(cols)));
      var q =
          new DeviceTensor.DeviceQuant(
              kind.bits, kind.format, ldw, group, groups, scales, null, tile);
      return new DeviceTensor(codes, CudaKernels.DT_F32, rows, cols, q);
    }

    /** Norm weights around 1.0, as a trained model's. */
    long norm(int n) {
      DeviceBuffer b = allocate(4L * n);
      float[] ones = new float[n];
      java.util.Arrays.fill(ones, 1f);
      device.copyIn(b.ptr(), java.lang.foreign.MemorySegment.ofArray(ones));
      return b.ptr();
    }

    DeviceModel model(
        LlamaConfig c,
        DeviceTensor embedding,
        DeviceTensor output,
        java.util.function.BiFunction<Integer, Integer, DeviceTensor> matrix) {
      List<DeviceModel.Layer> layers = new ArrayList<>();
      for (int l = 0; l < c.layers(); l++) {
        layers.add(
            new DeviceModel.Layer(
                norm(c.dim()),
                matrix.apply(c.dim(), c.dim()),
                matrix.apply(c.kvDim(), c.dim()),
                matrix.apply(c.kvDim(), c.dim()),
                matrix.apply(c.dim(), c.dim()),
                0L,
                0L,
                0L,
                norm(c.dim()),
                matrix.apply(c.hiddenDim(), c.dim()),
                matrix.apply(c.hiddenDim(), c.dim()),
                matrix.apply(c.dim(), c.hiddenDim())));
      }
      long outputNorm = norm(c.dim());
      device.synchronize();
      return new DeviceModel(c, embedding, output, outputNorm, layers, owned);
    }
  }

  /** A synthetic weight format for {@link #createQuantized}. */
  public enum QuantKind {
    /** INT8 per-channel codes. */
    INT8(8, CudaKernels.QF_INT8, 0, 0xff),
    /** FP8 E4M3 codes with per-channel scales (codes kept finite). */
    FP8_E4M3(8, CudaKernels.QF_E4M3, 0, 0xbf),
    /** INT4 symmetric, groups of 128 (AWQ/GPTQ-calibrated versions have this format). */
    INT4_G128(4, 0, 128, 0xff),
    /** INT4 symmetric, groups of 32: GGUF Q4_0's layout on the device. */
    INT4_G32(4, 0, 32, 0xff);

    final int bits;
    final int format;
    final int group;
    final int mask;

    QuantKind(int bits, int format, int group, int mask) {
      this.bits = bits;
      this.format = format;
      this.group = group;
      this.mask = mask;
    }

    /** Device bytes of a {@code rows x cols} matrix: codes plus scales. */
    public long bytes(long rows, long cols) {
      long ldw = QuantizedLayout.align16((int) (bits == 8 ? cols : (cols + 1) / 2));
      long groups = group == 0 ? 1 : (cols + group - 1) / group;
      return rows * ldw + 4 * rows * groups;
    }
  }

  /** Bytes one decode step reads at batch 1 with {@code kind} weights. */
  public static long weightBytesPerStep(LlamaConfig c, QuantKind kind) {
    long d = c.dim();
    long perLayer =
        2 * kind.bytes(d, d)
            + 2 * kind.bytes(c.kvDim(), d)
            + 2 * kind.bytes(c.hiddenDim(), d)
            + kind.bytes(d, c.hiddenDim());
    return perLayer * c.layers() + kind.bytes(c.vocabSize(), d);
  }

  /** Bytes one decode step reads at batch 1: every matrix but the embedding (one row of it). */
  public static long weightBytesPerStep(LlamaConfig c, int elementBytes) {
    long perLayer =
        2L * c.dim() * c.dim() + 2L * c.kvDim() * c.dim() + 3L * c.hiddenDim() * c.dim();
    return (perLayer * c.layers() + (long) c.vocabSize() * c.dim()) * elementBytes;
  }
}
