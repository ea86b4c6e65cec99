package io.kvant.cuda.model;

import io.kvant.cuda.device.CudaDevice;
import io.kvant.cuda.device.DeviceBuffer;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Device buffers of one GPU test (uploads, outputs, random inputs), released together by {@link
 * #close()}.
 */
final class DeviceScratch implements AutoCloseable {
  private final CudaDevice dev;
  private final List<DeviceBuffer> buffers = new ArrayList<>();
  private final SplittableRandom rnd;

  DeviceScratch(CudaDevice dev, long seed) {
    this.dev = dev;
    this.rnd = new SplittableRandom(seed);
  }

  /** {@code n} Gaussian values of standard deviation {@code scale}. */
  float[] random(int n, double scale) {
    float[] a = new float[n];
    for (int i = 0; i < n; i++) {
      a[i] = (float) (rnd.nextGaussian() * scale);
    }
    return a;
  }

  /** A device copy of {@code s}; its address. */
  long up(MemorySegment s) {
    DeviceBuffer b = dev.upload(s);
    buffers.add(b);
    return b.ptr();
  }

  long up(float[] a) {
    return up(MemorySegment.ofArray(a));
  }

  /** Releases {@code b} with the others; returns it. */
  DeviceBuffer keep(DeviceBuffer b) {
    buffers.add(b);
    return b;
  }

  /** {@code bytes} of device memory; its address. */
  long alloc(long bytes) {
    DeviceBuffer b = dev.allocate(bytes);
    buffers.add(b);
    return b.ptr();
  }

  /** {@code n} floats from the device at {@code ptr}. */
  float[] down(long ptr, int n) {
    float[] a = new float[n];
    dev.download(ptr, MemorySegment.ofArray(a));
    return a;
  }

  @Override
  public void close() {
    buffers.forEach(DeviceBuffer::close);
    buffers.clear();
  }
}
