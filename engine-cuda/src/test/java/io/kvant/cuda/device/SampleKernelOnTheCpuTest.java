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

  private void check(Path harness, SampleRows t) throws Exception {
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
    int exact = t.check(ids);
    assertThat(exact).as("rows whose draw allows one id only").isPositive();
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
