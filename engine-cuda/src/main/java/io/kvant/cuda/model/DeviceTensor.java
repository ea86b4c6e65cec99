package io.kvant.cuda.model;

import io.kvant.cuda.device.DeviceBuffer;

/**
 * A weight matrix {@code [rows][cols]} on the device, row-major, in a storage type the kernels and
 * cuBLASLt read directly ({@code dtype} is a {@link io.kvant.cuda.device.CudaKernels} code).
 */
public record DeviceTensor(DeviceBuffer buffer, int dtype, int rows, int cols) {
  /** The device address. */
  public long ptr() {
    return buffer.ptr();
  }
}
