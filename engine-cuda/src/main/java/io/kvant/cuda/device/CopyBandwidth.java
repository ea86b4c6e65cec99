package io.kvant.cuda.device;

import java.util.Arrays;
import java.util.function.LongSupplier;

/**
 * The device memory's measured bandwidth: device-to-device copies of one buffer into another, read
 * and write bytes both counted, the median over timed trials after three untimed ones. The figure
 * the GPU benchmarks state their decode as a share of (a copy reads and writes at the rate a
 * weight-streaming product can only read at, so it is the practical ceiling, not the data sheet's).
 */
public final class CopyBandwidth {
  private CopyBandwidth() {}

  /**
   * Copies {@code bytes} {@code trials + 3} times on {@code d} and returns the median rate in TB/s
   * ({@code 2 * bytes} per copy over its wall time, the copy synchronised); {@code nanos} is the
   * clock.
   *
   * @throws IllegalArgumentException if {@code bytes < 1} or {@code trials < 1}
   */
  public static double measure(CudaDevice d, long bytes, int trials, LongSupplier nanos) {
    if (bytes < 1 || trials < 1) {
      throw new IllegalArgumentException(
          "bandwidth needs bytes >= 1 and trials >= 1, got " + bytes + ", " + trials);
    }
    try (DeviceBuffer a = d.allocate(bytes);
        DeviceBuffer b = d.allocate(bytes)) {
      d.driver().memset(a.ptr(), 1, bytes);
      d.synchronize();
      double[] tbs = new double[trials];
      for (int i = 0; i < trials + 3; i++) {
        long t0 = nanos.getAsLong();
        d.driver().copyDeviceToDevice(b.ptr(), a.ptr(), bytes);
        d.driver().synchronize();
        long t1 = nanos.getAsLong();
        if (i >= 3) {
          tbs[i - 3] = 2.0 * bytes / ((t1 - t0) * 1e-9) / 1e12;
        }
      }
      Arrays.sort(tbs);
      return tbs[tbs.length / 2];
    }
  }
}
