package io.kvant.cuda.model;

import io.kvant.cuda.device.CudaDevice;
import io.kvant.cuda.device.CudaKernels;
import io.kvant.cuda.device.DeviceBuffer;
import io.kvant.engine.tensor.DType;
import io.kvant.engine.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.IdentityHashMap;
import java.util.Map;

/**
 * The device copies of host weights, shared between model versions and reference-counted.
 *
 * <p>Design note: model versions share unchanged tensors on the heap (a delta version's {@code
 * ModelWeights} holds the very same {@link Tensor} and {@code float[]} objects as its parent).
 * Keying device copies by the identity of those host objects gives the same sharing on the device
 * for free: a version that changed one matrix uploads that matrix alone, and releasing a version
 * frees exactly what no other live version still references. Identity, not content, is the right
 * key: equal content in distinct objects is rare (and would cost a hash of gigabytes to detect),
 * while the heap sharing is already the swap pipeline's contract.
 *
 * <p>Thread-safe (acquire and release may come from the loader and the engine loop).
 */
public final class DeviceWeightCache {
  private final CudaDevice device;
  private final boolean tileEightBit;
  private final Map<Object, Entry> entries = new IdentityHashMap<>();
  private final Map<Object, Entry> dense = new IdentityHashMap<>();
  private long uploads;
  private long uploadedBytes;

  private static final class Entry {
    final DeviceBuffer buffer;
    final DeviceTensor tensor;
    int refs;

    Entry(DeviceBuffer buffer, DeviceTensor tensor) {
      this.buffer = buffer;
      this.tensor = tensor;
    }

    void free() {
      buffer.close();
      if (tensor.quant() != null) {
        tensor.quant().scales().close();
        if (tensor.quant().zeros() != null) {
          tensor.quant().zeros().close();
        }
      }
    }
  }

  /** A cache that tiles every code layout that tiles ({@link QuantizedLayout#of(Tensor)}). */
  public DeviceWeightCache(CudaDevice device) {
    this(device, true);
  }

  /**
   * A cache whose 8-bit codes are tiled ({@code mq8}) only when {@code tileEightBit}: W8A8 reads
   * them row-major, so a backend with W8A8 on keeps them so. 4-bit codes are tiled where they can
   * be.
   */
  public DeviceWeightCache(CudaDevice device, boolean tileEightBit) {
    this.device = device;
    this.tileEightBit = tileEightBit;
  }

  /** The storage code of a dense host type the device reads as it is, or -1. */
  static int denseCode(DType type) {
    return switch (type) {
      case F32 -> CudaKernels.DT_F32;
      case F16 -> CudaKernels.DT_F16;
      case BF16 -> CudaKernels.DT_BF16;
      default -> -1;
    };
  }

  /**
   * The device copy of the matrix {@code t}, uploaded on first use (quantized types in their {@link
   * QuantizedLayout}); each call takes one reference.
   *
   * @throws UnsupportedOperationException naming the type when the backend cannot read it
   */
  public synchronized DeviceTensor acquire(Tensor t) {
    Entry e = entries.get(t);
    if (e == null) {
      int code = denseCode(t.dtype());
      if (code >= 0) {
        MemorySegment data = t.data();
        DeviceBuffer b = device.upload(data);
        e = new Entry(b, new DeviceTensor(b, code, t.rows(), t.cols()));
        uploadedBytes += data.byteSize();
      } else if (QuantizedLayout.handles(t.dtype())) {
        e = uploadQuantized(QuantizedLayout.of(t, true, tileEightBit));
      } else {
        throw new UnsupportedOperationException(
            "the CUDA backend reads F32, F16, BF16, I8, I4, F8_E4M3, F8_E5M2, Q8_0 and Q4_0"
                + " weights; got "
                + t.dtype()
                + " (serve it with --device cpu)");
      }
      entries.put(t, e);
      uploads++;
    }
    e.refs++;
    return e.tensor;
  }

  private Entry uploadQuantized(QuantizedLayout q) {
    DeviceBuffer codes = device.upload(q.codes().asSlice(0, q.codeBytes()));
    DeviceBuffer scales = null;
    try {
      scales = device.upload(q.scales());
      DeviceBuffer zeros =
          q.zeros() == null ? null : device.upload(MemorySegment.ofArray(q.zeros()));
      var quant = DeviceTensor.DeviceQuant.of(q, scales, zeros);
      uploadedBytes += q.deviceBytes();
      return new Entry(
          codes, new DeviceTensor(codes, CudaKernels.DT_F32, q.rows(), q.cols(), quant));
    } catch (RuntimeException ex) {
      codes.close();
      if (scales != null) {
        scales.close();
      }
      throw ex;
    }
  }

  /**
   * A dense copy of {@code t} for gathers (the embedding table): as it is when the device reads its
   * type, else decoded to F32 on the host. Each call takes one reference, released with {@link
   * #releaseDense}.
   *
   * <p>Design note: an embedding lookup reads one row per token, so it gains nothing from quantized
   * storage on the device; decoding once at upload keeps the embedding kernel simple and the values
   * bit-identical to the CPU decoder's. It costs device memory (4 bytes per element of a quantized
   * table).
   */
  public synchronized DeviceTensor acquireDense(Tensor t) {
    if (denseCode(t.dtype()) >= 0) {
      return acquire(t);
    }
    Entry e = dense.get(t);
    if (e == null) {
      int rows = t.rows();
      int cols = t.cols();
      DeviceBuffer b = device.allocate(4L * rows * cols);
      float[] row = new float[cols];
      try (Arena a = Arena.ofConfined()) {
        int chunk = Math.max(1, (16 << 20) / (4 * cols));
        MemorySegment staging = a.allocate(4L * chunk * cols, 16);
        for (int r0 = 0; r0 < rows; r0 += chunk) {
          int n = Math.min(chunk, rows - r0);
          for (int i = 0; i < n; i++) {
            t.dequantizeRow(r0 + i, row, 0);
            MemorySegment.copy(
                row, 0, staging, java.lang.foreign.ValueLayout.JAVA_FLOAT, 4L * i * cols, cols);
          }
          device.uploadTo(b.ptr() + 4L * r0 * cols, staging.asSlice(0, 4L * n * cols));
        }
      } catch (RuntimeException ex) {
        b.close();
        throw ex;
      }
      e = new Entry(b, new DeviceTensor(b, CudaKernels.DT_F32, rows, cols));
      dense.put(t, e);
      uploads++;
      uploadedBytes += 4L * rows * cols;
    }
    e.refs++;
    return e.tensor;
  }

  /** Drops one reference taken by {@link #acquireDense}. */
  public synchronized void releaseDense(Tensor t) {
    if (denseCode(t.dtype()) >= 0) {
      release(t);
      return;
    }
    drop(dense, t);
  }

  /** The device copy of a float vector (norm weights, biases); each call takes one reference. */
  public synchronized long acquire(float[] v) {
    Entry e = entries.get(v);
    if (e == null) {
      DeviceBuffer b = device.upload(v);
      e = new Entry(b, new DeviceTensor(b, CudaKernels.DT_F32, 1, v.length));
      entries.put(v, e);
      uploads++;
      uploadedBytes += 4L * v.length;
    }
    e.refs++;
    return e.buffer.ptr();
  }

  /** Drops one reference to the copy of {@code host}; the last one frees the device memory. */
  public synchronized void release(Object host) {
    drop(entries, host);
  }

  private static void drop(Map<Object, Entry> map, Object host) {
    Entry e = map.get(host);
    if (e == null) {
      throw new IllegalStateException("release of a weight that is not on the device");
    }
    if (--e.refs == 0) {
      map.remove(host);
      e.free();
    }
  }

  /** Distinct device copies of host objects (a dense copy of a quantized table counts apart). */
  public synchronized int size() {
    return entries.size() + dense.size();
  }

  /** Uploads so far (a shared tensor counts once). */
  public synchronized long uploads() {
    return uploads;
  }

  /** Bytes uploaded so far. */
  public synchronized long uploadedBytes() {
    return uploadedBytes;
  }
}
