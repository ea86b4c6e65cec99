package io.kvant.cuda.model;

import io.kvant.cuda.device.CudaKernels;
import io.kvant.cuda.device.DeviceBuffer;

/**
 * A weight matrix {@code [rows][cols]} on the device. Dense ({@code quant == null}): row-major in a
 * storage type the kernels and cuBLASLt read directly ({@code dtype} is a {@link CudaKernels}
 * code). Quantized: {@code buffer} holds the codes in the {@link QuantizedLayout} described by
 * {@code quant}, and {@code dtype} is {@link CudaKernels#DT_F32}, the type of the activations its
 * products read.
 */
public record DeviceTensor(DeviceBuffer buffer, int dtype, int rows, int cols, DeviceQuant quant) {
  /** A dense tensor. */
  public DeviceTensor(DeviceBuffer buffer, int dtype, int rows, int cols) {
    this(buffer, dtype, rows, cols, null);
  }

  /** The device address (of the codes, when quantized). */
  public long ptr() {
    return buffer.ptr();
  }

  public boolean quantized() {
    return quant != null;
  }

  /**
   * The scales (and zero points) of a quantized matrix on the device; the codes are the tensor's
   * buffer.
   *
   * @param zeros null when symmetric
   * @param tiled whether 4-bit codes are in {@link QuantizedLayout}'s tiled layout (read by {@code
   *     mq4}; {@code ldw} is then half the width)
   */
  public record DeviceQuant(
      int bits,
      int format,
      long ldw,
      int groupSize,
      int groupsPerRow,
      DeviceBuffer scales,
      DeviceBuffer zeros,
      boolean tiled) {
    /** The device description of layout {@code q} whose scales and zero points are these. */
    public static DeviceQuant of(QuantizedLayout q, DeviceBuffer scales, DeviceBuffer zeros) {
      return new DeviceQuant(
          q.bits(), q.format(), q.ldw(), q.groupSize(), q.groupsPerRow(), scales, zeros, q.tiled());
    }

    /**
     * log2 of the group size for the tiled kernels (a power of two there), or {@link
     * CudaKernels#MQ_ROW_GROUP} when a row is one group (a column index shifted by it is 0).
     */
    public int groupShift() {
      return groupShift(groupSize, groupsPerRow);
    }

    static int groupShift(int groupSize, int groupsPerRow) {
      return groupsPerRow == 1
          ? CudaKernels.MQ_ROW_GROUP
          : Integer.numberOfTrailingZeros(groupSize);
    }

    /** The address of the zero points, 0 when symmetric (the kernels' convention). */
    public long zerosPtr() {
      return zeros == null ? 0L : zeros.ptr();
    }
  }
}
