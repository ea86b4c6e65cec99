package io.kvant.cuda.driver;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * A shared library opened through FFM, with helpers to bind its functions.
 *
 * <p>Why a list of candidates: the driver ({@code libcuda.so.1}) is on the loader's path wherever a
 * driver is installed, but the toolkit libraries (NVRTC, cuBLASLt) usually live in {@code
 * <cuda>/lib64}, which is often not. Each candidate is either a bare name (left to {@code dlopen}'s
 * search) or tried in each of the given directories.
 */
final class NativeLibrary {
  private static final Linker LINKER = Linker.nativeLinker();
  private final String name;
  private final SymbolLookup lookup;

  private NativeLibrary(String name, SymbolLookup lookup) {
    this.name = name;
    this.lookup = lookup;
  }

  /**
   * Opens the first of {@code names} that loads, looking in each of {@code dirs} first and then on
   * the loader's own path.
   *
   * @throws CudaUnavailableException naming every candidate when none loads
   */
  static NativeLibrary open(List<String> names, List<Path> dirs, Arena arena, String what) {
    List<String> tried = new ArrayList<>();
    for (String n : names) {
      for (Path d : dirs) {
        Path p = d.resolve(n);
        if (Files.isRegularFile(p)) {
          tried.add(p.toString());
          Optional<SymbolLookup> l = tryOpen(p.toString(), arena);
          if (l.isPresent()) {
            return new NativeLibrary(p.toString(), l.get());
          }
        }
      }
      tried.add(n);
      Optional<SymbolLookup> l = tryOpen(n, arena);
      if (l.isPresent()) {
        return new NativeLibrary(n, l.get());
      }
    }
    throw new CudaUnavailableException(
        what + " not found (tried " + String.join(", ", tried) + ")");
  }

  private static Optional<SymbolLookup> tryOpen(String nameOrPath, Arena arena) {
    try {
      return Optional.of(SymbolLookup.libraryLookup(nameOrPath, arena));
    } catch (IllegalArgumentException e) {
      return Optional.empty();
    }
  }

  /** The file or name that was loaded. */
  String name() {
    return name;
  }

  /**
   * A downcall handle for {@code symbol}.
   *
   * @throws CudaUnavailableException if the library lacks the symbol (a too-old version)
   */
  MethodHandle fn(String symbol, FunctionDescriptor descriptor) {
    MemorySegment address =
        lookup
            .find(symbol)
            .orElseThrow(
                () ->
                    new CudaUnavailableException(
                        name + " has no function " + symbol + " (too old?)"));
    return LINKER.downcallHandle(address, descriptor);
  }
}
