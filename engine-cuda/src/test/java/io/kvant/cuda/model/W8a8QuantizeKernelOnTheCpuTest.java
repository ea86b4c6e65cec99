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

  /**
   * {@code w8a8_swiglu_quantize} against the four launches it replaces (both epilogues, {@code
   * swiglu}, {@code w8a8_quantize}) run in the same harness: the same codes and scales, bit for
   * bit, in both forms (14,336 and 1,000 columns in registers; 1,001 and 16,388 in two passes;
   * 4,096 with an accumulator stride of 4,100), with F32 and int32 accumulators.
   */
  @Test
  void swigluQuantizeGivesTheFourLaunchesCodes() throws Exception {
    Path harness = buildSwiglu();
    SplittableRandom rnd = new SplittableRandom(27);
    int[][] shapes = { // in, ldAcc
      {14336, 14336}, {1000, 1000}, {1001, 1004}, {16388, 16388}, {4096, 4100}
    };
    for (int fmt : new int[] {CudaKernels.QF_INT8, CudaKernels.QF_E4M3}) {
      for (int accInt = 0; accInt < 2; accInt++) {
        for (int[] s : shapes) {
          checkSwiglu(harness, rnd, fmt, accInt == 1, 3, s[0], s[1]);
        }
      }
    }
  }

  private void checkSwiglu(
      Path harness, SplittableRandom rnd, int fmt, boolean accInt, int n, int in, int ldAcc)
      throws Exception {
    int ldq = QuantizedLayout.align16(in);
    ByteBuffer b =
        ByteBuffer.allocate(28 + 8 * n * ldAcc + 4 * (n + 2 * in)).order(ByteOrder.LITTLE_ENDIAN);
    b.putInt(n).putInt(in).putInt(ldAcc).putInt(ldq).putInt(fmt).putInt(accInt ? 1 : 0).putInt(256);
    for (int m = 0; m < 2; m++) {
      for (int i = 0; i < n * ldAcc; i++) {
        // row 0 all zero (scale 0); the others accumulator-sized values
        int r = i / ldAcc;
        double v = r == 0 ? 0 : rnd.nextGaussian() * (accInt ? 3000 : 40);
        b.putInt(accInt ? (int) Math.round(v) : Float.floatToRawIntBits((float) v));
      }
    }
    for (int r = 0; r < n; r++) {
      b.putFloat((float) (0.01 + rnd.nextDouble() * 0.05));
    }
    for (int c = 0; c < 2 * in; c++) {
      b.putFloat((float) (accInt ? 1e-4 : 1e-2) * (float) (0.5 + rnd.nextDouble()));
    }
    ByteBuffer o = KernelOnTheCpu.run(harness, dir, b.array());
    byte[] fused = new byte[n * ldq];
    o.get(fused);
    float[] fusedScales = new float[n];
    for (int r = 0; r < n; r++) {
      fusedScales[r] = o.getFloat();
    }
    byte[] apart = new byte[n * ldq];
    o.get(apart);
    float[] apartScales = new float[n];
    for (int r = 0; r < n; r++) {
      apartScales[r] = o.getFloat();
    }
    String what = String.format("fmt %d, accInt %s, %d x %d (ldAcc %d)", fmt, accInt, n, in, ldAcc);
    assertThat(apartScales[0]).as("the zero row's scale, %s", what).isZero();
    assertThat(apartScales[1]).as("a row's scale, %s", what).isPositive();
    assertThat(fusedScales).as("scales, %s", what).isEqualTo(apartScales);
    assertThat(fused).as("codes, %s", what).isEqualTo(apart);
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

  private Path buildSwiglu() throws Exception {
    String src = CudaKernels.source();
    String kernel =
        KernelOnTheCpu.elements(src)
            + KernelOnTheCpu.cut(
                src,
                "// out = silu(gate) * up, elementwise",
                "extern \"C\" __global__ void swiglu(")
            + KernelOnTheCpu.cut(
                src,
                "__device__ __forceinline__ void store_out",
                "__device__ __forceinline__ void store_out")
            + quantizeCut(src, "extern \"C\" __global__ void w8a8_swiglu_quantize(")
            + KernelOnTheCpu.cut(
                src,
                "// y[r][c] (+)= acc[r][c] * rowScale[r] * colScale[c]",
                "extern \"C\" __global__ void w8a8_epilogue(");
    assertThat(kernel).as("the cut").contains("w8a8_quantize(").contains("swiglu(");
    return KernelOnTheCpu.build(
        dir,
        "w8a8_swiglu_quantize",
        kernel,
        "w8a8_swiglu_harness.cpp",
        "shim.h",
        "mq_shim.h",
        "attn_shim.h");
  }

  private static String quantizeCut(String src, String lastFunction) {
    return KernelOnTheCpu.codeFormats(src)
        + KernelOnTheCpu.cut(
            src, "__device__ __forceinline__ float warp_sum", "__device__ float block_max")
        + KernelOnTheCpu.cut(
            src,
            "__device__ __forceinline__ unsigned char e4m3_code",
            "__device__ __forceinline__ unsigned char e4m3_code")
        + KernelOnTheCpu.cut(src, "// One activation value's code under", lastFunction);
  }

  private Path build() throws Exception {
    String src = CudaKernels.source();
    String kernel = quantizeCut(src, "extern \"C\" __global__ void w8a8_quantize(");
    assertThat(kernel).as("the cut").contains("W8A8_ROW_VECS");
    return KernelOnTheCpu.build(
        dir, "w8a8_quantize", kernel, "w8a8_harness.cpp", "shim.h", "mq_shim.h", "attn_shim.h");
  }
}
