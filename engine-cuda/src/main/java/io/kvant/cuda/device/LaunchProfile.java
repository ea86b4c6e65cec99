package io.kvant.cuda.device;

import io.kvant.cuda.driver.CudaDriver;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Times each kernel launch of a stretch of work with a pair of events around it ({@code CudaBench
 * decode --profile}). Unlike ncu, which replays each kernel alone and cold, the kernels run back to
 * back at the clocks of a real step; the events do keep one kernel from starting before the
 * previous one ends (no overlapped launch), so the per-kernel times add up to a little more than an
 * overlapped step. Launches captured into a CUDA graph are not timed: profile with graphs off.
 */
public final class LaunchProfile {
  private final CudaDriver driver;
  private final MemorySegment stream;
  private final List<MemorySegment[]> events = new ArrayList<>();
  private final List<String> names = new ArrayList<>();
  private int used;

  /** Times launches on {@code device}'s stream. */
  public LaunchProfile(CudaDevice device) {
    this.driver = device.driver();
    this.stream = device.stream();
  }

  void before(String kernel, int gridX) {
    if (used == events.size()) {
      events.add(new MemorySegment[] {driver.createEvent(), driver.createEvent()});
    }
    names.add(kernel + " (" + gridX + ")");
    driver.record(events.get(used)[0], stream);
  }

  void after() {
    driver.record(events.get(used)[1], stream);
    used++;
  }

  /**
   * Microseconds and launches per kernel (name and grid) since the last call, in the order first
   * launched; waits for the work. Starts a new stretch.
   */
  public Map<String, double[]> collect() {
    Map<String, double[]> byKernel = new LinkedHashMap<>();
    for (int i = 0; i < used; i++) {
      double us = 1e3 * driver.elapsedMillis(events.get(i)[0], events.get(i)[1]);
      double[] sum = byKernel.computeIfAbsent(names.get(i), k -> new double[2]);
      sum[0] += us;
      sum[1]++;
    }
    used = 0;
    names.clear();
    return byKernel;
  }
}
