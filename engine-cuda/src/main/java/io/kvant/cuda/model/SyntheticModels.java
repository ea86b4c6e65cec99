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
    List<DeviceBuffer> owned = new ArrayList<>();
    long[] s = {seed};
    java.util.function.BiFunction<Integer, Integer, DeviceTensor> matrix =
        (rows, cols) -> {
          long count = (long) rows * cols;
          DeviceBuffer b = device.allocate(count * (dtype == CudaKernels.DT_F32 ? 4 : 2));
          owned.add(b);
          k.fillUniform(b.ptr(), dtype, count, s[0]++, (float) (1 / Math.sqrt(cols)));
          return new DeviceTensor(b, dtype, rows, cols);
        };
    java.util.function.IntFunction<Long> norm =
        n -> {
          DeviceBuffer b = device.allocate(4L * n);
          owned.add(b);
          k.fillUniform(b.ptr(), CudaKernels.DT_F32, n, s[0]++, 0.1f);
          // around 1.0: the norm weights of a trained model
          float[] ones = new float[n];
          java.util.Arrays.fill(ones, 1f);
          device.copyIn(b.ptr(), java.lang.foreign.MemorySegment.ofArray(ones));
          return b.ptr();
        };
    DeviceTensor emb = matrix.apply(c.vocabSize(), c.dim());
    DeviceTensor out = tied ? emb : matrix.apply(c.vocabSize(), c.dim());
    List<DeviceModel.Layer> layers = new ArrayList<>();
    for (int l = 0; l < c.layers(); l++) {
      layers.add(
          new DeviceModel.Layer(
              norm.apply(c.dim()),
              matrix.apply(c.dim(), c.dim()),
              matrix.apply(c.kvDim(), c.dim()),
              matrix.apply(c.kvDim(), c.dim()),
              matrix.apply(c.dim(), c.dim()),
              0L,
              0L,
              0L,
              norm.apply(c.dim()),
              matrix.apply(c.hiddenDim(), c.dim()),
              matrix.apply(c.hiddenDim(), c.dim()),
              matrix.apply(c.dim(), c.hiddenDim())));
    }
    device.synchronize();
    return new DeviceModel(c, emb, out, norm.apply(c.dim()), layers, owned);
  }

  /** Bytes one decode step reads at batch 1: every matrix but the embedding (one row of it). */
  public static long weightBytesPerStep(LlamaConfig c, int elementBytes) {
    long perLayer =
        2L * c.dim() * c.dim() + 2L * c.kvDim() * c.dim() + 3L * c.hiddenDim() * c.dim();
    return (perLayer * c.layers() + (long) c.vocabSize() * c.dim()) * elementBytes;
  }
}
