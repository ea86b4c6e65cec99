package io.kvant.engine.tensor.packed;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Optional;

/**
 * Memory for packed weight codes, carved in order from slabs of whole 2 MiB huge pages that the
 * kernel is asked to back with huge pages: on Linux each slab is a private anonymous {@code mmap}
 * advised {@code MADV_HUGEPAGE} before anything touches it, so its pages fault in as huge pages
 * (under the usual {@code madvise} THP mode too); elsewhere an automatic arena's memory.
 *
 * <p>Why: the row kernels stream each step's codes once, and on 4 KiB pages every page of a stream
 * is a TLB miss and a fresh start for the hardware prefetcher. With each matrix in its own
 * allocation, a model of small matrices (SmolLM2-135M: 187-498 KiB each, 210 a token) cannot get
 * huge pages at all; in shared slabs it does. Measured one thread, same files, alternated
 * (perf/RESULTS.md, session 25): SmolLM2 Q4_0 1.15-1.24x, Q8_0 1.23-1.27x, 1B Q8_0 1.10-1.15x.
 * Where the mapping or the advice is refused (another OS, no free huge pages) the codes work as
 * before on small pages.
 *
 * <p>Slabs grow from 2 MiB to {@link #MAX_SLAB} (a small model wastes at most the tail of one small
 * slab); a request larger than that gets a slab of its own, rounded up to whole huge pages. Each
 * slab is an automatic arena's memory, freed when no slice of it is reachable: a matrix released by
 * a hot swap frees its space only with the last other matrix of its slab, so a process holds at
 * most one extra copy of the codes that swaps replaced. Thread-safe.
 */
public final class CodeSlabs {
  /** A huge page on x86-64 and the usual arm64 configuration. */
  static final long HUGE = 2L << 20;

  /** The largest shared slab. */
  static final long MAX_SLAB = 32L << 20;

  /** Alignment of every slice: a cache line, as the kernels' vector loads want. */
  static final long ALIGN = 64;

  // Linux's values (x86-64 and arm64 alike)
  private static final int PROT_READ_WRITE = 0x3;
  private static final int MAP_PRIVATE_ANONYMOUS = 0x22;
  private static final int MADV_HUGEPAGE = 14;

  private final boolean linux;
  // mmap, munmap and madvise, looked up at the first slab: the first lookup bootstraps the FFM
  // linker (~40 ms), which a backend that never packs a matrix should not pay
  private Optional<Native> calls;
  private MemorySegment slab = MemorySegment.NULL;
  private long used;
  private long nextSlab = HUGE;
  private int slabs;
  private int advised;

  /** Slabs advised to huge pages where {@code linux} says this is Linux. */
  public CodeSlabs(boolean linux) {
    this.linux = linux;
  }

  /** For this process's OS: Linux takes the huge-page advice, others plain memory. */
  public static CodeSlabs forThisOs() {
    // Platform detection, not a setting: the mmap and madvise constants are Linux's own.
    return new CodeSlabs(System.getProperty("os.name", "").startsWith("Linux"));
  }

  /** {@code bytes} of zeroed memory, {@link #ALIGN}-aligned. */
  public synchronized MemorySegment allocate(long bytes) {
    if (bytes <= 0) {
      throw new IllegalArgumentException("allocation of " + bytes + " bytes");
    }
    long start = (used + ALIGN - 1) / ALIGN * ALIGN;
    if (slab.equals(MemorySegment.NULL) || start + bytes > slab.byteSize()) {
      if (bytes > MAX_SLAB) {
        return newSlab((bytes + HUGE - 1) / HUGE * HUGE).asSlice(0, bytes);
      }
      long size = nextSlab;
      while (size < bytes) {
        size *= 2;
      }
      slab = newSlab(size);
      nextSlab = Math.min(MAX_SLAB, size * 2);
      start = 0;
    }
    used = start + bytes;
    return slab.asSlice(start, bytes);
  }

  /** Slabs allocated so far. */
  public synchronized int slabs() {
    return slabs;
  }

  /** Slabs the kernel accepted the huge-page advice for. */
  public synchronized int advised() {
    return advised;
  }

  private MemorySegment newSlab(long size) {
    slabs++;
    if (linux && calls == null) {
      calls = Native.find();
    }
    if (linux && calls.isPresent()) {
      MemorySegment mapped = calls.get().map(size);
      if (mapped != null) {
        advised++;
        return mapped;
      }
    }
    return Arena.ofAuto().allocate(size, HUGE);
  }

  /** Linux's mmap, munmap and madvise through the FFM linker. */
  private record Native(MethodHandle mmap, MethodHandle munmap, MethodHandle madvise) {
    static Optional<Native> find() {
      Linker linker = Linker.nativeLinker();
      var lookup = linker.defaultLookup();
      var mmap = lookup.find("mmap");
      var munmap = lookup.find("munmap");
      var madvise = lookup.find("madvise");
      if (mmap.isEmpty() || munmap.isEmpty() || madvise.isEmpty()) {
        return Optional.empty();
      }
      return Optional.of(
          new Native(
              linker.downcallHandle(
                  mmap.get(),
                  FunctionDescriptor.of(
                      ValueLayout.ADDRESS,
                      ValueLayout.ADDRESS,
                      ValueLayout.JAVA_LONG,
                      ValueLayout.JAVA_INT,
                      ValueLayout.JAVA_INT,
                      ValueLayout.JAVA_INT,
                      ValueLayout.JAVA_LONG)),
              linker.downcallHandle(
                  munmap.get(),
                  FunctionDescriptor.of(
                      ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG)),
              linker.downcallHandle(
                  madvise.get(),
                  FunctionDescriptor.of(
                      ValueLayout.JAVA_INT,
                      ValueLayout.ADDRESS,
                      ValueLayout.JAVA_LONG,
                      ValueLayout.JAVA_INT))));
    }

    /**
     * {@code size} bytes (a multiple of {@link #HUGE}) at a huge-page boundary of a fresh mapping
     * (zero-filled by the kernel), advised to huge pages, unmapped when no slice of it is
     * reachable; {@code null} where the mapping or the advice fails.
     */
    MemorySegment map(long size) {
      // one huge page more than asked, so that an aligned range of `size` lies inside
      long length = size + HUGE;
      try {
        MemorySegment at =
            (MemorySegment)
                mmap.invokeExact(
                    MemorySegment.NULL, length, PROT_READ_WRITE, MAP_PRIVATE_ANONYMOUS, -1, 0L);
        if (at.address() == -1L) {
          return null; // MAP_FAILED
        }
        long offset = (HUGE - at.address() % HUGE) % HUGE;
        MethodHandle unmap = munmap;
        MemorySegment whole =
            at.reinterpret(
                length,
                Arena.ofAuto(),
                s -> {
                  try {
                    int ignored = (int) unmap.invokeExact(s, length);
                  } catch (Throwable e) {
                    throw new IllegalStateException("munmap", e);
                  }
                });
        MemorySegment slab = whole.asSlice(offset, size);
        if ((int) madvise.invokeExact(slab, size, MADV_HUGEPAGE) != 0) {
          return null; // the mapping goes with `whole`; the caller falls back to plain memory
        }
        return slab;
      } catch (Throwable e) {
        throw new IllegalStateException("mmap", e);
      }
    }
  }
}
