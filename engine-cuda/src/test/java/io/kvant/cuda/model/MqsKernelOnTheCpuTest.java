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
 * The {@code mqs} kernels' source (the staged products of 1-8 rows that single-stream decode runs
 * below the output head) run on the CPU where g++ is installed, as {@link MqwKernelOnTheCpuTest}
 * runs {@code mqw}'s: the kernels and their helpers cut from kvant.cu, each of a block's threads a
 * {@code std::thread}, {@code cp.async} a copy, {@code mma.m16n8k16} an exchange of fragments. Each
 * output must equal the product from the layout's values (float64) within 5e-5 of the largest:
 * plain (accumulated onto the outputs), with the RMSNorm folded in, and gate/up with SwiGLU, on
 * every staged split ({@code K8S4}, {@code K8S8}, {@code K16S4}) and code, with group sizes that
 * give one group per chunk, two, and one per row. The kernels' speed and their behaviour on the
 * hardware are {@code QuantizedKernelsGpuTest#mqMatchesTheReference}'s; this runs on every build.
 */
class MqsKernelOnTheCpuTest {
  @TempDir Path dir;

  private static final String[] SPLITS = {"K8S4", "K8S8", "K16S4"};
  private static final String[] FORMS = {"plain", "norm", "swiglu", "swiglu_norm"};

  @Test
  void theStagedKernelsMultiplyTheLayoutsValues() throws Exception {
    Path harness = build();
    SplittableRandom rnd = new SplittableRandom(29);
    // spec, width: INT4 in groups of 128 and 32 (asymmetric), Q4_0, 8-bit per row and in groups
    Object[][] specs = {
      {"I4:g128", 1152},
      {"I4:g32:asym", 320},
      {"Q4_0", 576},
      {"I8", 544},
      {"F8_E4M3", 800},
      {"Q8_0", 1056}
    };
    int c = 0;
    for (Object[] s : specs) {
      for (int form = 0; form < FORMS.length; form++) {
        // each form on another split and row count; heights of one partial tile and of three
        int split = (c + form) % SPLITS.length;
        int n = form == 1 ? 3 : form == 3 ? 2 : 1;
        int out = (c + form) % 2 == 0 ? 40 : 9;
        check(harness, (String) s[0], (Integer) s[1], out, n, split, form, rnd);
      }
      c++;
    }
  }

  private void check(
      Path harness, String spec, int in, int out, int n, int split, int form, SplittableRandom rnd)
      throws Exception {
    boolean swiglu = form >= 2;
    boolean norm = form == 1 || form == 3;
    QuantizedLayout[] m = new QuantizedLayout[swiglu ? 2 : 1];
    for (int i = 0; i < m.length; i++) {
      float[] w = new float[out * in];
      for (int j = 0; j < w.length; j++) {
        w[j] = (float) rnd.nextGaussian() * 0.1f;
      }
      Tensor t = QuantFixtures.quantize(w, out, in, QuantFixtures.Kind.parse(spec));
      m[i] = QuantizedLayout.of(t, true);
      assertThat(m[i].tiled()).as("%s %dx%d tiled", spec, out, in).isTrue();
    }
    QuantizedLayout q = m[0];
    int groupShift = DeviceTensor.DeviceQuant.groupShift(q.groupSize(), q.groupsPerRow());
    CudaKernels.MqCodes codes =
        q.bits() == 4
            ? CudaKernels.MqCodes.I4
            : q.format() == CudaKernels.QF_INT8 ? CudaKernels.MqCodes.I8 : CudaKernels.MqCodes.E4M3;
    float[] x = new float[n * in];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) rnd.nextGaussian();
    }
    float[] normW = new float[in];
    for (int i = 0; i < in; i++) {
      normW[i] = 0.5f + (float) rnd.nextDouble();
    }
    float[] base = new float[n * out];
    for (int i = 0; i < base.length; i++) {
      base[i] = (float) rnd.nextGaussian();
    }
    float eps = 1e-5f;
    float[] want = reference(m, x, normW, base, out, in, n, norm, swiglu, eps);
    double scale = 0;
    for (float v : want) {
      scale = Math.max(scale, Math.abs(v));
    }
    float[] got = run(harness, codes, m, groupShift, split, form, out, in, n, x, normW, base, eps);
    double err = 0;
    for (int i = 0; i < got.length; i++) {
      err = Math.max(err, Math.abs((double) got[i] - want[i]));
    }
    assertThat(err / scale)
        .as("mqs %s %s %s %dx%d, %d rows", SPLITS[split], FORMS[form], spec, out, in, n)
        .isLessThan(5e-5);
  }

  /**
   * The kernel's contract in float64: each activation rounded to F16 (after the multiply by the
   * norm weight, in F32, where the norm is folded in), multiplied by the layout's values, the sums
   * times {@code 1 / sqrt(mean(x^2) + eps)} with the norm; SwiGLU of gate and up, or added to the
   * outputs.
   */
  private static float[] reference(
      QuantizedLayout[] m,
      float[] x,
      float[] normW,
      float[] base,
      int out,
      int in,
      int n,
      boolean norm,
      boolean swiglu,
      float eps) {
    float[] want = new float[n * out];
    for (int r = 0; r < n; r++) {
      double ss = 0;
      double[] xin = new double[in];
      for (int i = 0; i < in; i++) {
        float v = x[r * in + i];
        ss += (double) v * v;
        xin[i] = Float.float16ToFloat(Float.floatToFloat16(norm ? v * normW[i] : v));
      }
      double inv = norm ? 1 / Math.sqrt(ss / in + eps) : 1;
      for (int o = 0; o < out; o++) {
        double[] sums = new double[m.length];
        for (int k = 0; k < m.length; k++) {
          for (int i = 0; i < in; i++) {
            sums[k] += m[k].value(o, i) * xin[i];
          }
          sums[k] *= inv;
        }
        want[r * out + o] =
            (float)
                (swiglu
                    ? sums[0] / (1 + Math.exp(-sums[0])) * sums[1]
                    : base[r * out + o] + sums[0]);
      }
    }
    return want;
  }

  private float[] run(
      Path harness,
      CudaKernels.MqCodes codes,
      QuantizedLayout[] m,
      int groupShift,
      int split,
      int form,
      int out,
      int in,
      int n,
      float[] x,
      float[] normW,
      float[] base,
      float eps)
      throws Exception {
    QuantizedLayout q = m[0];
    int codeBytes = (int) q.codeBytes();
    int zeroCount = q.zeros() == null ? 0 : q.zeros().length;
    int perMatrix = codeBytes + 4 * q.scales().length + zeroCount;
    ByteBuffer b =
        ByteBuffer.allocate(
                52 + m.length * perMatrix + 4 * x.length + 4 * normW.length + 4 * base.length)
            .order(ByteOrder.LITTLE_ENDIAN);
    b.putInt(codes.ordinal()).putInt(split).putInt(form).putInt(out).putInt(in).putInt(n);
    b.putInt(groupShift).putInt(q.groupsPerRow()).putInt(1).putInt(q.scales().length);
    b.putInt(zeroCount).putInt(codeBytes).putFloat(eps);
    for (QuantizedLayout l : m) {
      TiledKernelSource.put(b, l, codeBytes);
    }
    TiledKernelSource.put(b, x);
    TiledKernelSource.put(b, normW);
    TiledKernelSource.put(b, base);
    return TiledKernelSource.run(harness, dir, b, n * out);
  }

  private Path build() throws Exception {
    String src = CudaKernels.source();
    String kernel =
        TiledKernelSource.helpers(src)
            + KernelOnTheCpu.cut(
                src, "template <bool SW, int P>", "__device__ __forceinline__ void mq_store_rows")
            + TiledKernelSource.section(
                src,
                "template <int CODE, int KS, int D, bool SW, bool NORM>",
                "MQS_SPLITS(mq8e, MQC_E4M3)",
                "extern __shared__ __align__(16) unsigned char mqs_smem[];",
                "unsigned char");
    return KernelOnTheCpu.build(
        dir, "the mqs kernels", kernel, "mqs_harness.cpp", "shim.h", "mq_shim.h", "attn_shim.h");
  }
}
