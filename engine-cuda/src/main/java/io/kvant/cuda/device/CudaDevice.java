package io.kvant.cuda.device;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

import io.kvant.cuda.driver.CublasLt;
import io.kvant.cuda.driver.CudaDriver;
import io.kvant.cuda.driver.CudaUnavailableException;
import io.kvant.cuda.driver.Nvrtc;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One CUDA device opened for kvant: the driver, its primary context, one stream, NVRTC, cuBLASLt,
 * and an account of the device memory kvant holds.
 *
 * <p>Design note: everything runs on one stream, so work is ordered without events, and the host
 * only waits where it reads results back (logits or sampled ids). Allocations go through {@link
 * #allocate}, which counts live bytes, so tests and benchmarks can measure what a model version or
 * a swap costs on the device exactly, independent of the driver's own reservations.
 *
 * <p>Threading: the engine loop is the only thread that launches work, on {@link #stream()}, after
 * {@link #makeCurrent()}. Other threads (a hot swap uploads a version's weights from an RPC or the
 * reload agent's thread, and releases the old one from wherever its last request ends) only
 * allocate, free and upload: those calls make the context current themselves, and uploads go
 * through a stream of their own, so that they never join a CUDA graph the engine loop may be
 * capturing on the compute stream at that moment. Allocation accounting is thread-safe.
 */
public final class CudaDevice implements AutoCloseable {
  private final CudaDriver driver;
  private final Nvrtc nvrtc;
  private final CublasLt cublas;
  private final int device;
  private final MemorySegment context;
  private final MemorySegment stream;
  private final MemorySegment transferStream;
  private final String name;
  private final int ccMajor;
  private final int ccMinor;
  private final int multiprocessors;
  private final int sharedPerBlockOptIn;
  private final int driverVersion;
  private final KernelCompiler compiler;
  private final AtomicLong liveBytes = new AtomicLong();
  private boolean closed;

  private CudaDevice(CudaOptions options) {
    this.driver = CudaDriver.load(options.libraryDirs());
    int count = driver.deviceCount();
    if (count == 0) {
      throw new CudaUnavailableException("the driver reports no CUDA device");
    }
    if (options.deviceOrdinal() >= count) {
      throw new CudaUnavailableException(
          "device " + options.deviceOrdinal() + " asked for, but only " + count + " present");
    }
    this.nvrtc = Nvrtc.load(options.libraryDirs());
    this.cublas = CublasLt.load(options.libraryDirs());
    this.device = driver.device(options.deviceOrdinal());
    this.name = driver.deviceName(device);
    this.ccMajor = driver.attribute(device, CudaDriver.ATTR_CC_MAJOR);
    this.ccMinor = driver.attribute(device, CudaDriver.ATTR_CC_MINOR);
    this.multiprocessors = driver.attribute(device, CudaDriver.ATTR_MULTIPROCESSOR_COUNT);
    this.sharedPerBlockOptIn = driver.attribute(device, CudaDriver.ATTR_MAX_SHARED_PER_BLOCK_OPTIN);
    this.driverVersion = driver.driverVersion();
    this.context = driver.retainPrimaryContext(device);
    driver.setCurrent(context);
    this.stream = driver.createStream();
    this.transferStream = driver.createStream();
    this.compiler =
        new KernelCompiler(
            nvrtc, options.kernelCacheDir(), "sm_" + ccMajor + ccMinor, driverVersion);
  }

  /**
   * Opens the device named by {@code options}.
   *
   * @throws CudaUnavailableException with one line saying why when there is no driver, no device or
   *     a missing library
   */
  public static CudaDevice open(CudaOptions options) {
    return new CudaDevice(options);
  }

  /** Makes this device's context current on the calling thread. */
  public void makeCurrent() {
    driver.setCurrent(context);
  }

  public CudaDriver driver() {
    return driver;
  }

  public CublasLt cublas() {
    return cublas;
  }

  public KernelCompiler compiler() {
    return compiler;
  }

  public MemorySegment stream() {
    return stream;
  }

  /** e.g. {@code NVIDIA H200 (sm_90, 132 SMs, driver 13000)}. */
  public String describe() {
    return name
        + " (sm_"
        + ccMajor
        + ccMinor
        + ", "
        + multiprocessors
        + " SMs, driver "
        + driverVersion
        + ")";
  }

  public int multiprocessors() {
    return multiprocessors;
  }

  /** Whether kernels may launch with programmatic dependent launch (compute capability 9.0+). */
  public boolean supportsOverlappedLaunch() {
    return ccMajor >= 9;
  }

  /** The most shared memory one block may opt in to, in bytes. */
  public int sharedPerBlockOptIn() {
    return sharedPerBlockOptIn;
  }

  /** {@code [free, total]} bytes of device memory, as the driver reports them. */
  public long[] memoryInfo() {
    return driver.memInfo();
  }

  /** Device bytes currently held through {@link #allocate}. */
  public long liveBytes() {
    return liveBytes.get();
  }

  /** Allocates {@code bytes} of device memory, counted in {@link #liveBytes()}. */
  public DeviceBuffer allocate(long bytes) {
    makeCurrent();
    long ptr = driver.malloc(bytes);
    liveBytes.addAndGet(bytes);
    return new DeviceBuffer(this, ptr, bytes);
  }

  void release(long ptr, long bytes) {
    makeCurrent();
    driver.free(ptr);
    liveBytes.addAndGet(-bytes);
  }

  /**
   * Copies host bytes (native or heap) to a new device buffer, on the transfer stream; returns when
   * the copy is done. Callable from any thread.
   */
  public DeviceBuffer upload(MemorySegment host) {
    DeviceBuffer b = allocate(host.byteSize());
    try {
      uploadTo(b.ptr(), host);
    } catch (RuntimeException e) {
      b.close();
      throw e;
    }
    return b;
  }

  /**
   * Copies host bytes to device memory that no queued work reads (a buffer being filled before
   * use), on the transfer stream; returns when the copy is done. Callable from any thread.
   */
  public void uploadTo(long dst, MemorySegment src) {
    makeCurrent();
    copyAndWait(dst, src, transferStream);
  }

  /** Copies a float array to a new device buffer. */
  public DeviceBuffer upload(float[] host) {
    return upload(MemorySegment.ofArray(host));
  }

  /**
   * Copies {@code dst.byteSize()} bytes from device address {@code src} after the stream's queued
   * work, and waits for them. {@code dst} may be a heap segment.
   */
  public void download(long src, MemorySegment dst) {
    if (dst.isNative()) {
      driver.copyToHostAsync(dst, src, dst.byteSize(), stream);
      driver.synchronize(stream);
      return;
    }
    try (Arena a = Arena.ofConfined()) {
      MemorySegment tmp = a.allocate(dst.byteSize(), 16);
      driver.copyToHostAsync(tmp, src, dst.byteSize(), stream);
      driver.synchronize(stream);
      dst.copyFrom(tmp);
    }
  }

  /**
   * Copies host bytes (native or heap) to device address {@code dst}, ordered after the stream's
   * queued work, and returns once the copy is done (so {@code src} may be reused at once).
   */
  public void copyIn(long dst, MemorySegment src) {
    copyAndWait(dst, src, stream);
  }

  /**
   * Copies host bytes to {@code dst} on {@code on} and waits (heap bytes staged natively first).
   */
  private void copyAndWait(long dst, MemorySegment src, MemorySegment on) {
    if (src.isNative()) {
      driver.copyToDeviceAsync(dst, src, src.byteSize(), on);
      driver.synchronize(on);
      return;
    }
    try (Arena a = Arena.ofConfined()) {
      MemorySegment tmp = a.allocate(src.byteSize(), 16);
      tmp.copyFrom(src);
      driver.copyToDeviceAsync(dst, tmp, src.byteSize(), on);
      driver.synchronize(on);
    }
  }

  /**
   * Queues a copy of native host bytes to the device without waiting: {@code src} must stay
   * unchanged until the stream has passed it (the forward pass's staging buffer is rewritten only
   * after the step's results were read back, which synchronizes).
   */
  public void copyInAsync(long dst, MemorySegment src) {
    driver.copyToDeviceAsync(dst, src, src.byteSize(), stream);
  }

  /** Waits for all work queued on the stream. */
  public void synchronize() {
    driver.synchronize(stream);
  }

  /** Loads a CUBIN image and returns the module handle. */
  public MemorySegment loadModule(byte[] cubin) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment image = a.allocate(cubin.length + 1L);
      MemorySegment.copy(cubin, 0, image, JAVA_BYTE, 0, cubin.length);
      return driver.loadModule(image);
    }
  }

  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    driver.releasePrimaryContext(device);
  }
}
