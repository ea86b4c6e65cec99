package io.kvant.cuda.device;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The {@code sample} kernel's source run on the CPU, where a C++20 compiler is installed (the
 * development and CI machines have g++, and no GPU): the kernel and the helpers it calls are cut
 * from kvant.cu, built as host C++ under {@code emu/shim.h} (each of a block's 1,024 threads a
 * {@code std::thread}, {@code __syncthreads} a barrier, warp shuffles an exchange between warp
 * barriers), and every id it draws for {@link SampleRows}' rows must be one {@link SampleReference}
 * admits. This checks the kernel's logic on every build; its speed, and its behaviour on the
 * hardware, are {@code CudaKernelsGpuTest#samplingMatchesTheReferenceOnRandomRows}'s.
 */
class SampleKernelOnTheCpuTest {
  @TempDir Path dir;

  @Test
  void everyDrawOfTheKernelSourceIsOneTheReferenceAdmits() throws Exception {
    Path harness = build();
    // each shape under each top-k (top-p varied) at 1,000 tokens; then a Llama-2-sized vocabulary
    check(harness, SampleRows.random(new SplittableRandom(1), SampleRows.SHAPES * 4, 1000));
    check(harness, SampleRows.random(new SplittableRandom(2), SampleRows.SHAPES, 32000));
  }

  /**
   * Greedy rows (temperature 0) take the first pass's argmax alone: the lowest index among equal
   * maxima, NaN never the maximum. An odd vocabulary puts the unrolled loop's end and the tail loop
   * at every offset; 32,003 entries run both loops in every thread.
   */
  @Test
  void greedyRowsTakeTheLowestIndexOfTheMaximum() throws Exception {
    Path harness = build();
    for (int vocab : new int[] {1003, 32003}) {
      SampleRows r = SampleRows.random(new SplittableRandom(vocab), SampleRows.SHAPES * 2, vocab);
      SampleRows greedy =
          new SampleRows(
              r.rows(),
              vocab,
              r.logits(),
              new float[r.rows()],
              r.topK(),
              r.topP(),
              r.minP(),
              r.seeds());
      int[] ids = draw(harness, greedy);
      for (int row = 0; row < r.rows(); row++) {
        float best = Float.NEGATIVE_INFINITY;
        int want = Integer.MAX_VALUE;
        for (int i = 0; i < vocab; i++) {
          float v = r.logits()[row * vocab + i];
          if (v > best || (v == best && i < want)) {
            best = v;
            want = i;
          }
        }
        assertThat(ids[row])
            .as("vocab %d, row %d (shape %d)", vocab, row, row % SampleRows.SHAPES)
            .isEqualTo(want);
      }
    }
  }

  private void check(Path harness, SampleRows t) throws Exception {
    int exact = t.check(draw(harness, t));
    assertThat(exact).as("rows whose draw allows one id only").isPositive();
  }

  private int[] draw(Path harness, SampleRows t) throws Exception {
    ByteBuffer b =
        ByteBuffer.allocate(8 + t.rows() * 24 + t.logits().length * 4)
            .order(ByteOrder.LITTLE_ENDIAN);
    b.putInt(t.rows()).putInt(t.vocab());
    b.asFloatBuffer().put(t.temp());
    b.position(b.position() + 4 * t.rows());
    b.asIntBuffer().put(t.topK());
    b.position(b.position() + 4 * t.rows());
    b.asFloatBuffer().put(t.topP());
    b.position(b.position() + 4 * t.rows());
    b.asFloatBuffer().put(t.minP());
    b.position(b.position() + 4 * t.rows());
    b.asLongBuffer().put(t.seeds());
    b.position(b.position() + 8 * t.rows());
    b.asFloatBuffer().put(t.logits());
    ByteBuffer o = KernelOnTheCpu.run(harness, dir, b.array());
    int[] ids = new int[t.rows()];
    o.asIntBuffer().get(ids);
    return ids;
  }

  private Path build() throws Exception {
    String src = CudaKernels.source();
    String kernel =
        "typedef unsigned long long u64;\n"
            + KernelOnTheCpu.cut(
                src, "__device__ __forceinline__ float warp_sum", "__device__ float block_max")
            + KernelOnTheCpu.cutBefore(
                src, "__device__ __forceinline__ u64 splitmix64", "// Fills count elements")
            + "\n";
    return KernelOnTheCpu.build(dir, "the sample kernel", kernel, "sample_harness.cpp", "shim.h");
  }
}
