package io.kvant.cuda.model;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.cuda.device.CudaKernels;
import io.kvant.cuda.device.KernelOnTheCpu;
import io.kvant.engine.tensor.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The {@code mqp4} kernels (one-row INT4 products on row pairs, {@code MgemvSplits.MQ_WIDE_UNITS})
 * and their repack from the tiled layout, run on the CPU where g++ is installed, as {@link
 * MqsKernelOnTheCpuTest} runs {@code mqs}: the matrices quantized to INT4 in groups of 128 and
 * tiled in Java ({@link QuantizedLayout}), repacked into units by {@code mqp4_repack}, multiplied
 * by {@code mqp4}. Each output must equal the product from the layout's values (float64, the
 * activations rounded to F16) within 1e-3 of the largest: mqp4 sums each 8-column run in F16
 * (fma.rn.f16x2), so it agrees with the float64 product to F16 rounding of those partial sums, not
 * to the 5e-5 of the F32-summing kernels. Widths of one, three and five units (a partial and a
 * second pass of four unit loads), one to three row pairs a warp; plain (accumulated onto the
 * outputs) with one and three matrices, with the RMSNorm folded in, and gate/up with SwiGLU. The
 * kernels' behaviour on the hardware is {@code QuantizedKernelsGpuTest#mqpMatchesTheReference}'s.
 */
class MqpKernelOnTheCpuTest {
  @TempDir Path dir;

  private static final String[] FORMS = {"plain", "norm", "swiglu", "swiglu_norm"};

  @Test
  void thePairKernelsMultiplyTheLayoutsValues() throws Exception {
    Path harness = build();
    SplittableRandom rnd = new SplittableRandom(35);
    // 1, 3, 5 and 10 units a row: the four slots partly filled, refilled once and refilled in
    // two passes of the slots
    int[] widths = {1024, 3072, 5120, 10240};
    int c = 0;
    for (int in : widths) {
      for (int form = 0; form < FORMS.length; form++) {
        boolean swiglu = form >= 2;
        // q/k/v-like launches of three matrices (40, 8 and 24 rows) for the plain and norm forms
        // at one width, one matrix (or gate/up) elsewhere; 9 gate/up rows: a partial block
        int[] outs = swiglu ? new int[] {9, 9} : c == 1 ? new int[] {40, 8, 24} : new int[] {40};
        // one, two or three row pairs a warp in turn: 20 pairs in blocks of 8, 16 (the second
        // block's first round partial) or 24 (its last round partial)
        check(harness, in, outs, form, 1 + (form + c) % 3, rnd);
      }
      c++;
    }
  }

  private void check(Path harness, int in, int[] outs, int form, int rounds, SplittableRandom rnd)
      throws Exception {
    boolean swiglu = form >= 2;
    boolean norm = form == 1 || form == 3;
    QuantizedLayout[] m = new QuantizedLayout[outs.length];
    for (int i = 0; i < m.length; i++) {
      float[] w = new float[outs[i] * in];
      for (int j = 0; j < w.length; j++) {
        w[j] = (float) rnd.nextGaussian() * 0.1f;
      }
      Tensor t = QuantFixtures.quantize(w, outs[i], in, QuantFixtures.Kind.parse("I4:g128"));
      m[i] = QuantizedLayout.of(t, true);
      assertThat(m[i].tiled()).as("%dx%d tiled", outs[i], in).isTrue();
      assertThat(m[i].zeros()).as("symmetric").isNull();
    }
    float[] x = new float[in];
    for (int i = 0; i < in; i++) {
      x[i] = (float) rnd.nextGaussian();
    }
    float[] normW = new float[in];
    for (int i = 0; i < in; i++) {
      normW[i] = 0.5f + (float) rnd.nextDouble();
    }
    int outputs = swiglu ? 1 : m.length;
    float[][] base = new float[outputs][];
    for (int k = 0; k < outputs; k++) {
      base[k] = new float[outs[k]];
      for (int i = 0; i < outs[k]; i++) {
        base[k][i] = (float) rnd.nextGaussian();
      }
    }
    float eps = 1e-5f;
    float[] want = reference(m, x, normW, base, in, norm, swiglu, eps);
    float[] got = run(harness, m, form, in, rounds, x, normW, base, eps);
    double scale = 0;
    for (float v : want) {
      scale = Math.max(scale, Math.abs(v));
    }
    double err = 0;
    for (int i = 0; i < got.length; i++) {
      err = Math.max(err, Math.abs((double) got[i] - want[i]));
    }
    assertThat(got).hasSameSizeAs(want);
    // SwiGLU meets two products' F16 partial sums in g * sigmoid(g) * u: held to 2e-3 as on the
    // GPU (QuantizedKernelsGpuTest), the single products to 1e-3
    assertThat(err / scale)
        .as("mqp4 %s, width %d, %d matrices, %d rounds", FORMS[form], in, m.length, rounds)
        .isLessThan(swiglu ? 2e-3 : 1e-3);
  }

  /**
   * The kernel's contract in float64: the activation rounded to F16 (after the multiply by the norm
   * weight, in F32, where the norm is folded in), multiplied by the layout's values, the sums times
   * {@code 1 / sqrt(mean(x^2) + eps)} with the norm; SwiGLU of gate and up, or added to the
   * outputs.
   */
  private static float[] reference(
      QuantizedLayout[] m,
      float[] x,
      float[] normW,
      float[][] base,
      int in,
      boolean norm,
      boolean swiglu,
      float eps) {
    double ss = 0;
    double[] xin = new double[in];
    for (int i = 0; i < in; i++) {
      ss += (double) x[i] * x[i];
      xin[i] = Float.float16ToFloat(Float.floatToFloat16(norm ? x[i] * normW[i] : x[i]));
    }
    double inv = norm ? 1 / Math.sqrt(ss / in + eps) : 1;
    int total = 0;
    for (float[] b : base) {
      total += b.length;
    }
    float[] want = new float[total];
    int at = 0;
    for (int k = 0; k < base.length; k++) {
      for (int o = 0; o < base[k].length; o++) {
        double[] sums = new double[swiglu ? 2 : 1];
        for (int s = 0; s < sums.length; s++) {
          QuantizedLayout l = m[swiglu ? s : k];
          for (int i = 0; i < in; i++) {
            sums[s] += l.value(o, i) * xin[i];
          }
          sums[s] *= inv;
        }
        want[at++] =
            (float) (swiglu ? sums[0] / (1 + Math.exp(-sums[0])) * sums[1] : base[k][o] + sums[0]);
      }
    }
    return want;
  }

  private float[] run(
      Path harness,
      QuantizedLayout[] m,
      int form,
      int in,
      int rounds,
      float[] x,
      float[] normW,
      float[][] base,
      float eps)
      throws Exception {
    int bytes = 24 + 12 * m.length + 4;
    for (QuantizedLayout l : m) {
      bytes += (int) l.codeBytes() + 4 * l.scales().length;
    }
    int outputs = 0;
    for (float[] b : base) {
      outputs += b.length;
    }
    bytes += 8 * in + 4 * outputs;
    ByteBuffer b = ByteBuffer.allocate(bytes).order(ByteOrder.LITTLE_ENDIAN);
    b.putInt(form).putInt(in).putInt(1).putInt(m.length).putInt(m[0].groupsPerRow()).putInt(rounds);
    for (QuantizedLayout l : m) {
      b.putInt(l.rows()).putInt((int) l.codeBytes()).putInt(l.scales().length);
    }
    b.putFloat(eps);
    for (QuantizedLayout l : m) {
      TiledKernelSource.put(b, l, (int) l.codeBytes());
    }
    TiledKernelSource.put(b, x);
    TiledKernelSource.put(b, normW);
    for (float[] v : base) {
      TiledKernelSource.put(b, v);
    }
    return TiledKernelSource.run(harness, dir, b, outputs);
  }

  private Path build() throws Exception {
    String src = CudaKernels.source();
    String kernel =
        KernelOnTheCpu.cut(
                src,
                "__device__ __forceinline__ void store_out",
                "__device__ __forceinline__ void store_out")
            + TiledKernelSource.section(
                src,
                "#define MQP_WARPS 8",
                "MQP_KERNEL(mqp4_swiglu_norm, true, true)",
                "extern __shared__ __align__(16) unsigned short mqp_xs[];",
                "unsigned short");
    return KernelOnTheCpu.build(
        dir, "the mqp4 kernels", kernel, "mqp_harness.cpp", "shim.h", "mq_shim.h", "attn_shim.h");
  }
}
