package io.kvant.cuda.device;

/**
 * A block of device memory from {@link CudaDevice#allocate}. Closing it frees the memory (once;
 * later closes do nothing).
 */
public final class DeviceBuffer implements AutoCloseable {
  private final CudaDevice device;
  private final long ptr;
  private final long bytes;
  private boolean freed;

  DeviceBuffer(CudaDevice device, long ptr, long bytes) {
    this.device = device;
    this.ptr = ptr;
    this.bytes = bytes;
  }

  /** The device address. */
  public long ptr() {
    return ptr;
  }

  /** Size in bytes. */
  public long bytes() {
    return bytes;
  }

  @Override
  public synchronized void close() {
    if (!freed) {
      freed = true;
      device.release(ptr, bytes);
    }
  }
}
