package io.kvant.engine.tensor;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Random;
import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class ComputePoolTest {

  /** Bitwise equality: each output element is computed the same way whatever the row split. */
  @ParameterizedTest
  @EnumSource(DType.class)
  void parallelMatmulEqualsSingleThreaded(DType type) {
    Random rnd = new Random(5);
    int cols = type.isBlockType() ? 3 * type.blockSize() : 75;
    try (ComputePool one = new ComputePool(1);
        ComputePool two = new ComputePool(2);
        ComputePool three = new ComputePool(3)) {
      for (int rows : new int[] {1, 17, 100, 333}) {
        Tensor w = RandomTensors.random(type, rows, cols, rnd);
        for (int batch : new int[] {1, 3}) {
          float[] x = RandomTensors.randomInput(batch * cols, rnd);
          float[] expected = new float[batch * rows];
          w.matmul(x, batch, expected);
          for (ComputePool pool : new ComputePool[] {one, two, three}) {
            float[] out = new float[batch * rows];
            pool.matmul(w, x, batch, out);
            assertThat(out).as("threads=%d rows=%d", pool.threads(), rows).isEqualTo(expected);
          }
        }
      }
    }
  }

  @Test
  void parallelForVisitsEachIndexOnce() {
    try (ComputePool pool = new ComputePool(3)) {
      for (int n : new int[] {0, 1, 2, 3, 7, 100}) {
        AtomicIntegerArray seen = new AtomicIntegerArray(Math.max(n, 1));
        pool.parallelFor(n, seen::incrementAndGet);
        for (int i = 0; i < n; i++) {
          assertThat(seen.get(i)).isEqualTo(1);
        }
      }
    }
  }

  @Test
  void rangesAreGrainAligned() {
    try (ComputePool pool = new ComputePool(3)) {
      AtomicIntegerArray seen = new AtomicIntegerArray(100);
      pool.parallelRanges(
          100,
          16,
          (start, end) -> {
            assertThat(start % 16).isZero();
            assertThat(end == 100 || end % 16 == 0).isTrue();
            for (int i = start; i < end; i++) {
              seen.incrementAndGet(i);
            }
          });
      for (int i = 0; i < 100; i++) {
        assertThat(seen.get(i)).isEqualTo(1);
      }
    }
  }

  @Test
  void workIsCutIntoChunksThatAnyThreadMayRun() {
    // 3 threads, 100 units of 1: 12 chunks (4 per thread) of at most 9, claimed by whoever is
    // free; a caller whose workers never get a core would run them all itself.
    try (ComputePool pool = new ComputePool(3)) {
      java.util.List<int[]> ranges =
          java.util.Collections.synchronizedList(new java.util.ArrayList<>());
      pool.parallelRanges(100, 1, (start, end) -> ranges.add(new int[] {start, end}));
      assertThat(ranges).hasSize(12);
      ranges.sort(java.util.Comparator.comparingInt(r -> r[0]));
      int next = 0;
      for (int[] r : ranges) {
        assertThat(r[0]).isEqualTo(next);
        assertThat(r[1] - r[0]).isBetween(1, 9);
        next = r[1];
      }
      assertThat(next).isEqualTo(100);
    }
    // Held by a body that blocks, the team still finishes the call: the other chunks go to the
    // threads that are free, the caller's included. A team of two cuts 8 units into 4 chunks of 2.
    try (ComputePool pool = new ComputePool(2)) {
      java.util.concurrent.CountDownLatch others = new java.util.concurrent.CountDownLatch(3);
      AtomicIntegerArray seen = new AtomicIntegerArray(8);
      pool.parallelRanges(
          8,
          1,
          (start, end) -> {
            assertThat(end - start).isEqualTo(2);
            if (start == 0) {
              try {
                // The first chunk waits until the other three have run elsewhere.
                assertThat(others.await(10, java.util.concurrent.TimeUnit.SECONDS)).isTrue();
              } catch (InterruptedException e) {
                throw new IllegalStateException(e);
              }
            } else {
              others.countDown();
            }
            for (int i = start; i < end; i++) {
              seen.incrementAndGet(i);
            }
          });
      for (int i = 0; i < 8; i++) {
        assertThat(seen.get(i)).isEqualTo(1);
      }
    }
  }

  @Test
  void aShortCallIsSharedAmongFewerThreads() {
    // 4 threads, but work for two: the call is cut for two (8 chunks) and runs on at most two
    // threads, every index once; work for four or more uses the whole team's chunk count.
    try (ComputePool pool = new ComputePool(4)) {
      for (int round = 0; round < 50; round++) {
        java.util.Set<String> names = java.util.concurrent.ConcurrentHashMap.newKeySet();
        java.util.List<int[]> ranges =
            java.util.Collections.synchronizedList(new java.util.ArrayList<>());
        AtomicIntegerArray seen = new AtomicIntegerArray(64);
        pool.parallelRanges(
            64,
            1,
            2 * ComputePool.MIN_WORK_PER_THREAD + 1,
            (start, end) -> {
              names.add(Thread.currentThread().getName());
              ranges.add(new int[] {start, end});
              for (int i = start; i < end; i++) {
                seen.incrementAndGet(i);
              }
            });
        assertThat(names.size()).isBetween(1, 2);
        assertThat(ranges).hasSize(8);
        for (int i = 0; i < 64; i++) {
          assertThat(seen.get(i)).isEqualTo(1);
        }
      }
      java.util.List<int[]> ranges =
          java.util.Collections.synchronizedList(new java.util.ArrayList<>());
      pool.parallelRanges(
          64, 1, 4 * ComputePool.MIN_WORK_PER_THREAD, (s, e) -> ranges.add(new int[] {s, e}));
      assertThat(ranges).hasSize(16);
      // below one thread's share, the caller runs the whole range at once
      ranges.clear();
      pool.parallelRanges(64, 1, 1, (s, e) -> ranges.add(new int[] {s, e}));
      assertThat(ranges).containsExactly(new int[] {0, 64});
    }
    assertThatThrownBy(
            () -> {
              try (ComputePool pool = new ComputePool(2)) {
                pool.parallelRanges(4, 1, -1, (s, e) -> {});
              }
            })
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("work=-1");
  }

  @Test
  void exceptionsPropagate() {
    try (ComputePool pool = new ComputePool(3)) {
      assertThatThrownBy(
              () ->
                  pool.parallelFor(
                      9,
                      i -> {
                        if (i == 8) {
                          throw new IllegalStateException("boom");
                        }
                      }))
          .hasMessageContaining("boom");
    }
    assertThatThrownBy(() -> new ComputePool(0)).isInstanceOf(IllegalArgumentException.class);
  }
}
