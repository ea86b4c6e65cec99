package io.kvant.cuda.driver;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;
import java.util.List;

/**
 * NVRTC, the CUDA runtime compiler ({@code libnvrtc.so}), through FFM: compiles CUDA C source to a
 * CUBIN for one architecture. A compile error becomes a {@link CudaException} carrying NVRTC's log.
 */
public final class Nvrtc {
  private final NativeLibrary lib;
  private final MethodHandle version;
  private final MethodHandle createProgram;
  private final MethodHandle compileProgram;
  private final MethodHandle destroyProgram;
  private final MethodHandle getLogSize;
  private final MethodHandle getLog;
  private final MethodHandle getCubinSize;
  private final MethodHandle getCubin;
  private final MethodHandle getErrorString;

  private Nvrtc(NativeLibrary lib) {
    this.lib = lib;
    version = lib.fn("nvrtcVersion", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
    createProgram =
        lib.fn(
            "nvrtcCreateProgram",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS));
    compileProgram =
        lib.fn("nvrtcCompileProgram", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS));
    destroyProgram = lib.fn("nvrtcDestroyProgram", FunctionDescriptor.of(JAVA_INT, ADDRESS));
    getLogSize =
        lib.fn("nvrtcGetProgramLogSize", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
    getLog = lib.fn("nvrtcGetProgramLog", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
    getCubinSize = lib.fn("nvrtcGetCUBINSize", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
    getCubin = lib.fn("nvrtcGetCUBIN", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
    getErrorString = lib.fn("nvrtcGetErrorString", FunctionDescriptor.of(ADDRESS, JAVA_INT));
  }

  /**
   * Opens NVRTC from {@code dirs} (e.g. {@code /usr/local/cuda/lib64}) or the loader's path.
   *
   * @throws CudaUnavailableException if no NVRTC library is found
   */
  public static Nvrtc load(List<Path> dirs) {
    return new Nvrtc(
        NativeLibrary.open(
            List.of("libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"),
            dirs,
            Arena.global(),
            "libnvrtc (the CUDA runtime compiler)"));
  }

  /** {@code major.minor} of this NVRTC. */
  public String version() {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment major = a.allocate(JAVA_INT);
      MemorySegment minor = a.allocate(JAVA_INT);
      check((int) version.invokeExact(major, minor), "nvrtcVersion");
      return major.get(JAVA_INT, 0) + "." + minor.get(JAVA_INT, 0);
    } catch (Throwable t) {
      throw CudaDriver.rethrow(t);
    }
  }

  private String describe(int rc) {
    try {
      MemorySegment s = (MemorySegment) getErrorString.invokeExact(rc);
      return s.reinterpret(256).getString(0);
    } catch (Throwable t) {
      return "NVRTC error " + rc;
    }
  }

  private void check(int rc, String call) {
    if (rc != 0) {
      throw new CudaException(call, rc, describe(rc));
    }
  }

  /**
   * Compiles {@code source} (named {@code name} in messages) with {@code options} and returns the
   * CUBIN image.
   *
   * @throws CudaException on a compile error, with NVRTC's log in the message
   */
  public byte[] compileToCubin(String source, String name, List<String> options) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment progPtr = a.allocate(ADDRESS);
      check(
          (int)
              createProgram.invokeExact(
                  progPtr,
                  a.allocateFrom(source),
                  a.allocateFrom(name),
                  0,
                  MemorySegment.NULL,
                  MemorySegment.NULL),
          "nvrtcCreateProgram(" + name + ")");
      MemorySegment prog = progPtr.get(ADDRESS, 0);
      try {
        MemorySegment opts = a.allocate(ADDRESS, options.size());
        for (int i = 0; i < options.size(); i++) {
          opts.setAtIndex(ADDRESS, i, a.allocateFrom(options.get(i)));
        }
        int rc = (int) compileProgram.invokeExact(prog, options.size(), opts);
        if (rc != 0) {
          throw new CudaException(
              "nvrtcCompileProgram(" + name + ", " + String.join(" ", options) + ")",
              rc,
              describe(rc) + "\n" + log(a, prog));
        }
        MemorySegment size = a.allocate(JAVA_LONG);
        check((int) getCubinSize.invokeExact(prog, size), "nvrtcGetCUBINSize");
        MemorySegment cubin = a.allocate(size.get(JAVA_LONG, 0));
        check((int) getCubin.invokeExact(prog, cubin), "nvrtcGetCUBIN");
        return cubin.toArray(JAVA_BYTE);
      } finally {
        int ignored = (int) destroyProgram.invokeExact(progPtr);
      }
    } catch (Throwable t) {
      throw CudaDriver.rethrow(t);
    }
  }

  private String log(Arena a, MemorySegment prog) throws Throwable {
    MemorySegment size = a.allocate(JAVA_LONG);
    if ((int) getLogSize.invokeExact(prog, size) != 0) {
      return "";
    }
    MemorySegment log = a.allocate(Math.max(1, size.get(JAVA_LONG, 0)));
    if ((int) getLog.invokeExact(prog, log) != 0) {
      return "";
    }
    return log.getString(0);
  }

  /** The library file that was loaded. */
  public String libraryName() {
    return lib.name();
  }
}
