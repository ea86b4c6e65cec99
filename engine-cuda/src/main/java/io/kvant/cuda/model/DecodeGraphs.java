package io.kvant.cuda.model;

import io.kvant.cuda.device.CudaDevice;
import io.kvant.cuda.driver.CudaDriver;
import java.lang.foreign.MemorySegment;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

/**
 * CUDA graphs of decode steps, one per (row bucket, block-table stride, KV pool layout).
 *
 * <p>Design note: a decode step of an 8B model is some 500 kernel and GEMM launches; launched one
 * by one from Java they cost more host time than the GPU needs for the step at small batch, so the
 * GPU idles between kernels. A captured graph is launched with one call and runs its nodes back to
 * back. A graph fixes its kernels' arguments, so every address it uses must stay put (the step's
 * integers are copied into the same device buffer before each launch, and the graphs are dropped
 * when the forward pass replaces a buffer) and its shape is fixed: the rows are padded to a bucket
 * size and the block-table stride to a power of two, so a few graphs serve every batch size. A
 * shape is captured the second time it is seen (the first runs eagerly, which also creates the
 * cuBLASLt plans and loads any lazily loaded library kernels outside the capture). If a capture
 * fails, graphs are switched off for this forward pass and the step runs eagerly: graphs are an
 * optimisation, never a reason for a step to fail.
 *
 * <p>Not thread-safe: used by the forward pass's single thread.
 */
final class DecodeGraphs {
  /** Row buckets: a step of n rows runs the graph of the smallest bucket >= n. */
  private static final int[] ROW_BUCKETS = {
    1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256
  };

  /**
   * What a captured step bakes in besides its buffers: the shape, and every address and setting of
   * the KV pool it reads and writes. A pool allocated at a closed one's address but laid out for
   * another type or encoding (other scale offsets, channel scales, centered keys' statistics) gets
   * its own graph.
   */
  record Key(
      int rows,
      int stride,
      long kvPool,
      long kvScales,
      long keyChannels,
      long keyMeans,
      long queryMoments,
      int kvType,
      int kvEncoding) {
    static Key of(int rows, int stride, CudaKvPool kv) {
      return new Key(
          rows,
          stride,
          kv.ptr(),
          kv.scalesPtr(),
          kv.keyChannelsPtr(),
          kv.keyMeanPtr(),
          kv.queryMomentPtr(),
          kv.dtype(),
          kv.encodingBits());
    }
  }

  private final CudaDevice device;
  private final Map<Key, MemorySegment> execs = new HashMap<>();
  private final Set<Key> seen = new HashSet<>();
  private String failure;
  private long launches;
  private long captures;

  DecodeGraphs(CudaDevice device) {
    this.device = device;
  }

  /** The bucket for {@code n} rows, or -1 when {@code n} is past the largest (runs eagerly). */
  int rowBucket(int n) {
    if (failure != null) {
      return -1;
    }
    for (int b : ROW_BUCKETS) {
      if (b >= n) {
        return b;
      }
    }
    return -1;
  }

  /** The block-table stride for {@code blocks}: the next power of two, at most {@code cap}. */
  int blockBucket(int blocks, int cap) {
    int b = 1;
    while (b < blocks) {
      b <<= 1;
    }
    return Math.max(blocks, Math.min(b, cap));
  }

  /**
   * Runs {@code step} for {@code key}: as its graph when one is captured, capturing it the second
   * time the key is seen, else eagerly.
   */
  void run(Key key, Runnable step) {
    MemorySegment exec = execs.get(key);
    if (exec == null && failure == null && !seen.add(key)) {
      exec = capture(step);
      if (exec != null) {
        execs.put(key, exec);
      }
    }
    if (exec == null) {
      step.run();
      return;
    }
    device.driver().launchGraph(exec, device.stream());
    launches++;
  }

  private MemorySegment capture(Runnable step) {
    CudaDriver d = device.driver();
    MemorySegment graph;
    try {
      d.beginCapture(device.stream(), CudaDriver.CAPTURE_THREAD_LOCAL);
    } catch (RuntimeException e) {
      failure = "cannot capture: " + e.getMessage();
      return null;
    }
    try {
      step.run();
    } catch (RuntimeException e) {
      try {
        MemorySegment g = d.endCapture(device.stream());
        if (!MemorySegment.NULL.equals(g)) {
          d.destroyGraph(g);
        }
      } catch (RuntimeException ignored) {
        // The capture is already invalid; ending it is only to free the stream.
      }
      failure = "capture failed: " + e.getMessage();
      return null;
    }
    try {
      graph = d.endCapture(device.stream());
    } catch (RuntimeException e) {
      failure = "capture failed: " + e.getMessage();
      return null;
    }
    try {
      MemorySegment exec = d.instantiate(graph);
      captures++;
      return exec;
    } catch (RuntimeException e) {
      failure = "instantiation failed: " + e.getMessage();
      return null;
    } finally {
      d.destroyGraph(graph);
    }
  }

  /** Destroys every graph (their buffers are about to go); the caller has synchronized. */
  void clear() {
    for (MemorySegment e : execs.values()) {
      device.driver().destroyGraphExec(e);
    }
    execs.clear();
    seen.clear();
  }

  /** Why graphs are off, or null. */
  String failure() {
    return failure;
  }

  /** Graph launches so far. */
  long launches() {
    return launches;
  }

  /** Graphs captured so far. */
  long captures() {
    return captures;
  }
}
