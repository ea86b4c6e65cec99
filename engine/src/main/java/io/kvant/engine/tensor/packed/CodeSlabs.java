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
 * kernel is asked to back with huge pages ({@code madvise(MADV_COLLAPSE)}, Linux 6.1+).
 *
 * <p>Why: the row kernels stream each step's codes once, and on 4 KiB pages every page of a stream
 * is a TLB miss and a fresh start for the hardware prefetcher. With each matrix in its own
 * allocation, a model of small matrices (SmolLM2-135M: 187-498 KiB each, 210 a token) cannot get
 * huge pages at all; in shared slabs it does. Measured one thread, same files, alternated
 * (perf/RESULTS.md, session 25): SmolLM2 Q4_0 1.07-1.10x, Q8_0 1.33-1.37x, 1B Q8_0 1.02-1.10x, 1B
 * Q4_0 1.00-1.07x. Where the advice is refused (another OS, an older kernel, no free huge pages)
 * the codes work as before on small pages.
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

  private static final int MADV_COLLAPSE = 25;

  private final Optional<MethodHandle> madvise;
  private MemorySegment slab = MemorySegment.NULL;
  private long used;
  private long nextSlab = HUGE;
  private int slabs;
  private int advised;

  /** Slabs advised to huge pages where {@code linux} says this is Linux. */
  public CodeSlabs(boolean linux) {
    this.madvise = linux ? madvise() : Optional.empty();
  }

  /** For this process's OS: Linux takes the huge-page advice, others plain memory. */
  public static CodeSlabs forThisOs() {
    // Platform detection, not a setting: MADV_COLLAPSE's value is Linux's own.
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
    MemorySegment s = Arena.ofAuto().allocate(size, HUGE);
    slabs++;
    if (madvise.isPresent()) {
      try {
        // The zeroed pages are present: collapse them into huge pages now, before the codes are
        // written (MADV_HUGEPAGE would only apply to pages faulted later).
        int rc = (int) madvise.get().invokeExact(s, size, MADV_COLLAPSE);
        if (rc == 0) {
          advised++;
        }
      } catch (Throwable e) {
        throw new IllegalStateException("madvise", e);
      }
    }
    return s;
  }

  private static Optional<MethodHandle> madvise() {
    Linker linker = Linker.nativeLinker();
    return linker
        .defaultLookup()
        .find("madvise")
        .map(
            f ->
                linker.downcallHandle(
                    f,
                    FunctionDescriptor.of(
                        ValueLayout.JAVA_INT,
                        ValueLayout.ADDRESS,
                        ValueLayout.JAVA_LONG,
                        ValueLayout.JAVA_INT)));
  }
}
