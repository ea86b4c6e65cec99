package io.kvant.cuda.model;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.cuda.device.CudaKernels;
import io.kvant.cuda.device.KernelOnTheCpu;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code w8a8_quantize}'s source run on the CPU (g++ under {@code emu/}'s shims, as the other
 * kernel-on-the-CPU tests), code for code and scale for scale against {@link
 * W8a8GpuTest#quantizeRows}, the scalar reference the GPU test holds it to. Widths that are
 * multiples of 4 and fit the block's registers take the one-pass form; 30, 1,001 and 4,099 columns
 * (not multiples of 4), 16,388 (past the registers at 256 threads) and 4,096 with 64 threads (past
 * them at that block size) take the two-pass form; the padding columns up to {@code ldq} must be
 * written as zeros.
 */
class W8a8QuantizeKernelOnTheCpuTest {
  @TempDir Path dir;

  @Test
  void bothFormsGiveTheReferenceCodesAndScales() throws Exception {
    Path harness = build();
    SplittableRandom rnd = new SplittableRandom(26);
    int[][] shapes = { // in, threads
      {30, 256},
      {172, 256},
      {1001, 256},
      {1000, 256},
      {4096, 256},
      {4099, 256},
      {14336, 256},
      {16388, 256},
      {4096, 64}
    };
    for (int fmt : new int[] {CudaKernels.QF_INT8, CudaKernels.QF_E4M3}) {
      for (int[] s : shapes) {
        check(harness, rnd, fmt, 4, s[0], s[1]);
      }
    }
  }

  private void check(Path harness, SplittableRandom rnd, int fmt, int n, int in, int threads)
      throws Exception {
    int ldq = QuantizedLayout.align16(in);
    float[] x = new float[n * in];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) (2 * rnd.nextGaussian());
    }
    // row 0 zero; row 1 one large outlier; row 2 tiny values (E4M3 subnormals after scaling)
    java.util.Arrays.fill(x, 0, in, 0f);
    x[in + in / 2] = 300f;
    for (int c = 0; c < in; c++) {
      x[2 * in + c] *= 1e-3f;
    }
    x[2 * in] = 1f;
    ByteBuffer b = ByteBuffer.allocate(20 + 4 * x.length).order(ByteOrder.LITTLE_ENDIAN);
    b.putInt(n).putInt(in).putInt(ldq).putInt(fmt).putInt(threads);
    b.asFloatBuffer().put(x);
    ByteBuffer o = KernelOnTheCpu.run(harness, dir, b.array());
    byte[] got = new byte[n * ldq];
    o.get(got);
    float[] gotScales = new float[n];
    o.asFloatBuffer().get(gotScales);
    float[] wantScales = new float[n];
    byte[] want = W8a8GpuTest.quantizeRows(x, n, in, ldq, wantScales, fmt);
    String what = String.format("fmt %d, %d x %d, %d threads", fmt, n, in, threads);
    assertThat(gotScales).as("scales, %s", what).isEqualTo(wantScales);
    assertThat(got).as("codes, %s", what).isEqualTo(want);
  }

  private Path build() throws Exception {
    String src = CudaKernels.source();
    String kernel =
        KernelOnTheCpu.line(src, "#define QF_INT8 ")
            + KernelOnTheCpu.line(src, "#define QF_E4M3 ")
            + KernelOnTheCpu.cut(
                src, "__device__ __forceinline__ float warp_sum", "__device__ float block_max")
            + KernelOnTheCpu.cut(
                src,
                "__device__ __forceinline__ unsigned char e4m3_code",
                "__device__ __forceinline__ unsigned char e4m3_code")
            + KernelOnTheCpu.cut(
                src,
                "// One activation value's code under",
                "extern \"C\" __global__ void w8a8_quantize(");
    assertThat(kernel).as("the cut").contains("W8A8_ROW_VECS");
    return KernelOnTheCpu.build(
        dir, "w8a8_quantize", kernel, "w8a8_harness.cpp", "shim.h", "mq_shim.h", "attn_shim.h");
  }
}
