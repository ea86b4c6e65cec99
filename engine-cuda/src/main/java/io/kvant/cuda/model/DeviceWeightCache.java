package io.kvant.cuda.model;

import io.kvant.cuda.device.CudaDevice;
import io.kvant.cuda.device.CudaKernels;
import io.kvant.cuda.device.DeviceBuffer;
import io.kvant.engine.tensor.Tensor;
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
  private final Map<Object, Entry> entries = new IdentityHashMap<>();
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
  }

  public DeviceWeightCache(CudaDevice device) {
    this.device = device;
  }

  /** The storage code of a host type the device reads as it is. */
  static int dtypeCode(Tensor t) {
    return switch (t.dtype()) {
      case F32 -> CudaKernels.DT_F32;
      case F16 -> CudaKernels.DT_F16;
      case BF16 -> CudaKernels.DT_BF16;
      default ->
          throw new UnsupportedOperationException(
              "the CUDA backend reads F32, F16 and BF16 weights; got "
                  + t.dtype()
                  + " (quantized weights on the GPU are not built yet: serve them with --device cpu)");
    };
  }

  /** The device copy of {@code t}, uploaded on first use; each call takes one reference. */
  public synchronized DeviceTensor acquire(Tensor t) {
    Entry e = entries.get(t);
    if (e == null) {
      int code = dtypeCode(t);
      MemorySegment data = t.data();
      DeviceBuffer b = device.upload(data);
      e = new Entry(b, new DeviceTensor(b, code, t.rows(), t.cols()));
      entries.put(t, e);
      uploads++;
      uploadedBytes += data.byteSize();
    }
    e.refs++;
    return e.tensor;
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
    Entry e = entries.get(host);
    if (e == null) {
      throw new IllegalStateException("release of a weight that is not on the device");
    }
    if (--e.refs == 0) {
      entries.remove(host);
      e.buffer.close();
    }
  }

  /** Distinct host objects with a live device copy. */
  public synchronized int size() {
    return entries.size();
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
