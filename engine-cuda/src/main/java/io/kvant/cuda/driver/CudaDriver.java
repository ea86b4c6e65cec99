package io.kvant.cuda.driver;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;
import java.util.List;

/**
 * The CUDA driver API ({@code libcuda.so.1}) through FFM downcalls: the few functions the backend
 * uses, each wrapped so that a non-zero {@code CUresult} becomes a {@link CudaException} naming the
 * call and the driver's error name and string.
 *
 * <p>Handles ({@code CUcontext}, {@code CUmodule}, {@code CUfunction}, {@code CUstream}, {@code
 * CUevent}) are {@link MemorySegment} addresses; device pointers ({@code CUdeviceptr}) are {@code
 * long}. Thread-safe: the driver is, and this class keeps no state beyond the handles.
 */
public final class CudaDriver {
  /** {@code CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT}. */
  public static final int ATTR_MULTIPROCESSOR_COUNT = 16;

  /** {@code CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR}. */
  public static final int ATTR_CC_MAJOR = 75;

  /** {@code CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR}. */
  public static final int ATTR_CC_MINOR = 76;

  /** {@code CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN}. */
  public static final int ATTR_MAX_SHARED_PER_BLOCK_OPTIN = 97;

  /** {@code CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES}. */
  public static final int FUNC_ATTR_MAX_DYNAMIC_SHARED = 8;

  private final NativeLibrary lib;
  private final MethodHandle cuInit;
  private final MethodHandle cuDriverGetVersion;
  private final MethodHandle cuDeviceGetCount;
  private final MethodHandle cuDeviceGet;
  private final MethodHandle cuDeviceGetName;
  private final MethodHandle cuDeviceGetAttribute;
  private final MethodHandle cuDevicePrimaryCtxRetain;
  private final MethodHandle cuDevicePrimaryCtxRelease;
  private final MethodHandle cuCtxSetCurrent;
  private final MethodHandle cuCtxSynchronize;
  private final MethodHandle cuMemAlloc;
  private final MethodHandle cuMemFree;
  private final MethodHandle cuMemGetInfo;
  private final MethodHandle cuMemcpyDtoD;
  private final MethodHandle cuMemcpyHtoDAsync;
  private final MethodHandle cuMemcpyDtoHAsync;
  private final MethodHandle cuMemsetD8;
  private final MethodHandle cuStreamCreate;
  private final MethodHandle cuStreamSynchronize;
  private final MethodHandle cuModuleLoadData;
  private final MethodHandle cuModuleGetFunction;
  private final MethodHandle cuFuncSetAttribute;
  private final MethodHandle cuOccupancyMaxActiveBlocksPerMultiprocessor;
  private final MethodHandle cuLaunchKernel;
  private final MethodHandle cuLaunchKernelEx;
  private final MethodHandle cuGetErrorName;
  private final MethodHandle cuGetErrorString;
  private final MethodHandle cuEventCreate;
  private final MethodHandle cuEventRecord;
  private final MethodHandle cuEventSynchronize;
  private final MethodHandle cuEventElapsedTime;
  private final MethodHandle cuStreamBeginCapture;
  private final MethodHandle cuStreamEndCapture;
  private final MethodHandle cuGraphInstantiate;
  private final MethodHandle cuGraphLaunch;
  private final MethodHandle cuGraphDestroy;
  private final MethodHandle cuGraphExecDestroy;

  private CudaDriver(NativeLibrary lib) {
    this.lib = lib;
    cuInit = lib.fn("cuInit", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    cuDriverGetVersion = lib.fn("cuDriverGetVersion", FunctionDescriptor.of(JAVA_INT, ADDRESS));
    cuDeviceGetCount = lib.fn("cuDeviceGetCount", FunctionDescriptor.of(JAVA_INT, ADDRESS));
    cuDeviceGet = lib.fn("cuDeviceGet", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
    cuDeviceGetName =
        lib.fn("cuDeviceGetName", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
    cuDeviceGetAttribute =
        lib.fn(
            "cuDeviceGetAttribute", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
    cuDevicePrimaryCtxRetain =
        lib.fn("cuDevicePrimaryCtxRetain", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
    cuDevicePrimaryCtxRelease =
        lib.fn("cuDevicePrimaryCtxRelease_v2", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    cuCtxSetCurrent = lib.fn("cuCtxSetCurrent", FunctionDescriptor.of(JAVA_INT, ADDRESS));
    cuCtxSynchronize = lib.fn("cuCtxSynchronize", FunctionDescriptor.of(JAVA_INT));
    cuMemAlloc = lib.fn("cuMemAlloc_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
    cuMemFree = lib.fn("cuMemFree_v2", FunctionDescriptor.of(JAVA_INT, JAVA_LONG));
    cuMemGetInfo = lib.fn("cuMemGetInfo_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
    cuMemcpyDtoD =
        lib.fn("cuMemcpyDtoD_v2", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG));
    cuMemcpyHtoDAsync =
        lib.fn(
            "cuMemcpyHtoDAsync_v2",
            FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS));
    cuMemcpyDtoHAsync =
        lib.fn(
            "cuMemcpyDtoHAsync_v2",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS));
    cuMemsetD8 =
        lib.fn("cuMemsetD8_v2", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_INT, JAVA_LONG));
    cuStreamCreate = lib.fn("cuStreamCreate", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
    cuStreamSynchronize = lib.fn("cuStreamSynchronize", FunctionDescriptor.of(JAVA_INT, ADDRESS));
    cuModuleLoadData =
        lib.fn("cuModuleLoadData", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
    cuModuleGetFunction =
        lib.fn("cuModuleGetFunction", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
    cuFuncSetAttribute =
        lib.fn("cuFuncSetAttribute", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
    cuOccupancyMaxActiveBlocksPerMultiprocessor =
        lib.fn(
            "cuOccupancyMaxActiveBlocksPerMultiprocessor",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, JAVA_LONG));
    cuLaunchKernel =
        lib.fn(
            "cuLaunchKernel",
            FunctionDescriptor.of(
                JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
    cuLaunchKernelEx =
        lib.fn(
            "cuLaunchKernelEx",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS));
    cuGetErrorName = lib.fn("cuGetErrorName", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));
    cuGetErrorString =
        lib.fn("cuGetErrorString", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));
    cuEventCreate = lib.fn("cuEventCreate", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
    cuEventRecord = lib.fn("cuEventRecord", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
    cuEventSynchronize = lib.fn("cuEventSynchronize", FunctionDescriptor.of(JAVA_INT, ADDRESS));
    cuEventElapsedTime =
        lib.fn("cuEventElapsedTime", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
    // CUDA 12 headers map cuStreamBeginCapture to the _v2 entry point (the one taking a mode) and
    // cuGraphInstantiate to cuGraphInstantiateWithFlags; the library exports both names.
    cuStreamBeginCapture =
        lib.fn("cuStreamBeginCapture_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
    cuStreamEndCapture =
        lib.fn("cuStreamEndCapture", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
    cuGraphInstantiate =
        lib.fn(
            "cuGraphInstantiateWithFlags",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG));
    cuGraphLaunch = lib.fn("cuGraphLaunch", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
    cuGraphDestroy = lib.fn("cuGraphDestroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
    cuGraphExecDestroy = lib.fn("cuGraphExecDestroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
  }

  /** {@code CU_STREAM_CAPTURE_MODE_THREAD_LOCAL}: other threads' CUDA calls are unaffected. */
  public static final int CAPTURE_THREAD_LOCAL = 1;

  /** Starts capturing the work queued on {@code stream} into a graph instead of running it. */
  public void beginCapture(MemorySegment stream, int mode) {
    try {
      check((int) cuStreamBeginCapture.invokeExact(stream, mode), "cuStreamBeginCapture");
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /**
   * Ends the capture on {@code stream} and returns the graph. The capture always ends, also when
   * this throws (a launch that is not capturable invalidates it).
   */
  public MemorySegment endCapture(MemorySegment stream) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment v = a.allocate(ADDRESS);
      check((int) cuStreamEndCapture.invokeExact(stream, v), "cuStreamEndCapture");
      return v.get(ADDRESS, 0);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** An executable instance of {@code graph}. */
  public MemorySegment instantiate(MemorySegment graph) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment v = a.allocate(ADDRESS);
      check((int) cuGraphInstantiate.invokeExact(v, graph, 0L), "cuGraphInstantiateWithFlags");
      return v.get(ADDRESS, 0);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** Queues an executable graph on {@code stream}. */
  public void launchGraph(MemorySegment exec, MemorySegment stream) {
    try {
      check((int) cuGraphLaunch.invokeExact(exec, stream), "cuGraphLaunch");
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  public void destroyGraph(MemorySegment graph) {
    try {
      check((int) cuGraphDestroy.invokeExact(graph), "cuGraphDestroy");
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  public void destroyGraphExec(MemorySegment exec) {
    try {
      check((int) cuGraphExecDestroy.invokeExact(exec), "cuGraphExecDestroy");
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /**
   * Opens {@code libcuda.so.1} and calls {@code cuInit(0)}.
   *
   * @param extraDirs directories to search before the loader's path
   * @throws CudaUnavailableException if there is no driver library or {@code cuInit} fails (no
   *     device, driver/kernel-module mismatch)
   */
  public static CudaDriver load(List<Path> extraDirs) {
    NativeLibrary lib =
        NativeLibrary.open(
            List.of("libcuda.so.1", "libcuda.so"),
            extraDirs,
            Arena.global(),
            "libcuda.so.1 (the NVIDIA driver)");
    CudaDriver d = new CudaDriver(lib);
    int rc = d.callInt(d.cuInit, 0);
    if (rc != 0) {
      throw new CudaUnavailableException("cuInit failed: " + d.describe(rc));
    }
    return d;
  }

  /** The library file that was loaded. */
  public String libraryName() {
    return lib.name();
  }

  private int callInt(MethodHandle h, int arg) {
    try {
      return (int) h.invokeExact(arg);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  static RuntimeException rethrow(Throwable t) {
    if (t instanceof RuntimeException r) {
      return r;
    }
    if (t instanceof Error e) {
      throw e;
    }
    return new IllegalStateException(t);
  }

  /** {@code CUDA_ERROR_NAME (error string)} for a driver status code. */
  public String describe(int rc) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment p = a.allocate(ADDRESS);
      String name = "CUDA error " + rc;
      if ((int) cuGetErrorName.invokeExact(rc, p) == 0) {
        name = p.get(ADDRESS, 0).reinterpret(256).getString(0);
      }
      if ((int) cuGetErrorString.invokeExact(rc, p) == 0) {
        name += " (" + p.get(ADDRESS, 0).reinterpret(1024).getString(0) + ")";
      }
      return name;
    } catch (Throwable t) {
      return "CUDA error " + rc;
    }
  }

  void check(int rc, String call) {
    if (rc != 0) {
      throw new CudaException(call, rc, describe(rc));
    }
  }

  /** Driver version, e.g. 13000 for CUDA 13.0. */
  public int driverVersion() {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment v = a.allocate(JAVA_INT);
      check((int) cuDriverGetVersion.invokeExact(v), "cuDriverGetVersion");
      return v.get(JAVA_INT, 0);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** Number of CUDA devices. */
  public int deviceCount() {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment v = a.allocate(JAVA_INT);
      check((int) cuDeviceGetCount.invokeExact(v), "cuDeviceGetCount");
      return v.get(JAVA_INT, 0);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** The {@code CUdevice} of ordinal {@code ordinal}. */
  public int device(int ordinal) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment v = a.allocate(JAVA_INT);
      check((int) cuDeviceGet.invokeExact(v, ordinal), "cuDeviceGet(" + ordinal + ")");
      return v.get(JAVA_INT, 0);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** The device's marketing name. */
  public String deviceName(int device) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment v = a.allocate(256);
      check((int) cuDeviceGetName.invokeExact(v, 256, device), "cuDeviceGetName");
      return v.getString(0);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** A device attribute ({@code CU_DEVICE_ATTRIBUTE_*}). */
  public int attribute(int device, int attribute) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment v = a.allocate(JAVA_INT);
      check(
          (int) cuDeviceGetAttribute.invokeExact(v, attribute, device),
          "cuDeviceGetAttribute(" + attribute + ")");
      return v.get(JAVA_INT, 0);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /**
   * How many blocks of {@code threads} threads and {@code sharedBytes} dynamic shared memory of
   * {@code function} one multiprocessor holds at once.
   */
  public int activeBlocksPerMultiprocessor(MemorySegment function, int threads, long sharedBytes) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment v = a.allocate(JAVA_INT);
      check(
          (int)
              cuOccupancyMaxActiveBlocksPerMultiprocessor.invokeExact(
                  v, function, threads, sharedBytes),
          "cuOccupancyMaxActiveBlocksPerMultiprocessor");
      return v.get(JAVA_INT, 0);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** Retains the device's primary context. */
  public MemorySegment retainPrimaryContext(int device) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment v = a.allocate(ADDRESS);
      check((int) cuDevicePrimaryCtxRetain.invokeExact(v, device), "cuDevicePrimaryCtxRetain");
      return v.get(ADDRESS, 0);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** Releases a primary context retained by {@link #retainPrimaryContext}. */
  public void releasePrimaryContext(int device) {
    try {
      check((int) cuDevicePrimaryCtxRelease.invokeExact(device), "cuDevicePrimaryCtxRelease");
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** Makes {@code ctx} current on the calling thread. */
  public void setCurrent(MemorySegment ctx) {
    try {
      check((int) cuCtxSetCurrent.invokeExact(ctx), "cuCtxSetCurrent");
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** Waits for all work of the current context. */
  public void synchronize() {
    try {
      check((int) cuCtxSynchronize.invokeExact(), "cuCtxSynchronize");
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** Allocates {@code bytes} of device memory. */
  public long malloc(long bytes) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment v = a.allocate(JAVA_LONG);
      check(
          (int) cuMemAlloc.invokeExact(v, Math.max(bytes, 1L)),
          "cuMemAlloc_v2(" + bytes + " bytes)");
      return v.get(JAVA_LONG, 0);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** Frees device memory from {@link #malloc}. */
  public void free(long ptr) {
    try {
      check((int) cuMemFree.invokeExact(ptr), "cuMemFree_v2");
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** {@code [free, total]} device memory in bytes. */
  public long[] memInfo() {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment f = a.allocate(JAVA_LONG);
      MemorySegment t = a.allocate(JAVA_LONG);
      check((int) cuMemGetInfo.invokeExact(f, t), "cuMemGetInfo_v2");
      return new long[] {f.get(JAVA_LONG, 0), t.get(JAVA_LONG, 0)};
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /**
   * Queues a host-to-device copy on {@code stream}, ordered with the stream's kernels. The host
   * memory must stay valid until the stream has passed the copy.
   */
  public void copyToDeviceAsync(long dst, MemorySegment src, long bytes, MemorySegment stream) {
    try {
      check(
          (int) cuMemcpyHtoDAsync.invokeExact(dst, src, bytes, stream),
          "cuMemcpyHtoDAsync_v2(" + bytes + ")");
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** Queues a device-to-host copy on {@code stream}; synchronize the stream before reading. */
  public void copyToHostAsync(MemorySegment dst, long src, long bytes, MemorySegment stream) {
    try {
      check(
          (int) cuMemcpyDtoHAsync.invokeExact(dst, src, bytes, stream),
          "cuMemcpyDtoHAsync_v2(" + bytes + ")");
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** Copies {@code bytes} between device buffers. */
  public void copyDeviceToDevice(long dst, long src, long bytes) {
    try {
      check((int) cuMemcpyDtoD.invokeExact(dst, src, bytes), "cuMemcpyDtoD_v2(" + bytes + ")");
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** Sets {@code bytes} bytes at {@code dst} to {@code value}. */
  public void memset(long dst, int value, long bytes) {
    try {
      check((int) cuMemsetD8.invokeExact(dst, value, bytes), "cuMemsetD8_v2");
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** A new non-blocking stream. */
  public MemorySegment createStream() {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment v = a.allocate(ADDRESS);
      check((int) cuStreamCreate.invokeExact(v, 1), "cuStreamCreate");
      return v.get(ADDRESS, 0);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** Waits for the stream's work. */
  public void synchronize(MemorySegment stream) {
    try {
      check((int) cuStreamSynchronize.invokeExact(stream), "cuStreamSynchronize");
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** Loads a module from a CUBIN or PTX image (NUL-terminated for PTX). */
  public MemorySegment loadModule(MemorySegment image) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment v = a.allocate(ADDRESS);
      check((int) cuModuleLoadData.invokeExact(v, image), "cuModuleLoadData");
      return v.get(ADDRESS, 0);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** A kernel of a loaded module. */
  public MemorySegment function(MemorySegment module, String name) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment v = a.allocate(ADDRESS);
      check(
          (int) cuModuleGetFunction.invokeExact(v, module, a.allocateFrom(name)),
          "cuModuleGetFunction(" + name + ")");
      return v.get(ADDRESS, 0);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** Sets a function attribute ({@code CU_FUNC_ATTRIBUTE_*}). */
  public void setFunctionAttribute(MemorySegment function, int attribute, int value) {
    try {
      check(
          (int) cuFuncSetAttribute.invokeExact(function, attribute, value),
          "cuFuncSetAttribute(" + attribute + ")");
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /**
   * Launches a kernel.
   *
   * @param params a {@code void*[]} whose entries point at each argument's value
   */
  public void launch(
      MemorySegment function,
      String name,
      int gx,
      int gy,
      int gz,
      int bx,
      int by,
      int bz,
      int sharedBytes,
      MemorySegment stream,
      MemorySegment params) {
    try {
      int rc =
          (int)
              cuLaunchKernel.invokeExact(
                  function,
                  gx,
                  gy,
                  gz,
                  bx,
                  by,
                  bz,
                  sharedBytes,
                  stream,
                  params,
                  MemorySegment.NULL);
      if (rc != 0) {
        throw new CudaException(
            "cuLaunchKernel(" + name + ", grid " + gx + "x" + gy + "x" + gz + ", block " + bx + ")",
            rc,
            describe(rc));
      }
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** Bytes of a {@code CUlaunchConfig} followed by one {@code CUlaunchAttribute} (56 + 72). */
  public static final int LAUNCH_CONFIG_BYTES = 56 + 72;

  /** {@code CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION}. */
  private static final int LAUNCH_ATTR_PROGRAMMATIC_SERIALIZATION = 6;

  /**
   * As {@link #launch}, through {@code cuLaunchKernelEx} with programmatic stream serialization
   * allowed (Hopper's programmatic dependent launch): the grid may start while the previous kernel
   * on the stream finishes, once every block of that kernel has run {@code
   * griddepcontrol.launch_dependents}; the kernel itself must run {@code griddepcontrol.wait}
   * before it touches memory the previous kernels write or read. {@code config} is scratch of
   * {@link #LAUNCH_CONFIG_BYTES} bytes (native, 8-byte aligned), overwritten here.
   */
  public void launchOverlapped(
      MemorySegment function,
      String name,
      int gx,
      int gy,
      int gz,
      int bx,
      int sharedBytes,
      MemorySegment stream,
      MemorySegment params,
      MemorySegment config) {
    // CUlaunchConfig: grid x y z, block x y z, shared (7 x u32), pad, stream @32, attrs @40,
    // numAttrs @48; the attribute at 56: id (u32), pad, value @8 (an int for this attribute)
    config.set(JAVA_INT, 0, gx);
    config.set(JAVA_INT, 4, gy);
    config.set(JAVA_INT, 8, gz);
    config.set(JAVA_INT, 12, bx);
    config.set(JAVA_INT, 16, 1);
    config.set(JAVA_INT, 20, 1);
    config.set(JAVA_INT, 24, sharedBytes);
    config.set(ADDRESS, 32, stream);
    config.set(ADDRESS, 40, config.asSlice(56));
    config.set(JAVA_INT, 48, 1);
    config.set(JAVA_INT, 56, LAUNCH_ATTR_PROGRAMMATIC_SERIALIZATION);
    config.set(JAVA_INT, 64, 1);
    try {
      int rc = (int) cuLaunchKernelEx.invokeExact(config, function, params, MemorySegment.NULL);
      if (rc != 0) {
        throw new CudaException(
            "cuLaunchKernelEx(" + name + ", grid " + gx + "x" + gy + ", block " + bx + ")",
            rc,
            describe(rc));
      }
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** A new event (timing enabled). */
  public MemorySegment createEvent() {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment v = a.allocate(ADDRESS);
      check((int) cuEventCreate.invokeExact(v, 0), "cuEventCreate");
      return v.get(ADDRESS, 0);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** Records {@code event} on {@code stream}. */
  public void record(MemorySegment event, MemorySegment stream) {
    try {
      check((int) cuEventRecord.invokeExact(event, stream), "cuEventRecord");
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** Milliseconds between two recorded events (waits for the second). */
  public float elapsedMillis(MemorySegment start, MemorySegment end) {
    try (Arena a = Arena.ofConfined()) {
      check((int) cuEventSynchronize.invokeExact(end), "cuEventSynchronize");
      MemorySegment v = a.allocate(JAVA_FLOAT);
      check((int) cuEventElapsedTime.invokeExact(v, start, end), "cuEventElapsedTime");
      return v.get(JAVA_FLOAT, 0);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }
}
