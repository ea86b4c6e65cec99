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
 * The {@code mqw} kernels' source (the tiled products for wide batches) run on the CPU where g++ is
 * installed: the kernels and the helpers they call are cut from kvant.cu and built as host C++
 * under {@code emu/shim.h} and {@code emu/mq_shim.h} (each of a block's 256 threads a {@code
 * std::thread}, {@code mma.m16n8k16} a warp-wide exchange of fragments with the PTX ISA's
 * ownership, the F16 pair instructions with their one rounding), on tiled layouts that {@link
 * QuantizedLayout} writes, and each output must equal {@code x W^T} from the layout's values
 * (float64) within 5e-5 of the largest. The grid is the one {@link CudaKernels#mqw} launches:
 * columns split where {@link CudaKernels#mqwSplits} splits them (the last block of a tile adds the
 * splits; the harness runs each launch a second time with the blocks in reverse order, so another
 * block adds them, and requires the same bits) and in one piece. This checks the kernels' logic
 * (fragments, windows, groups, the split sums) on every build; their speed, and their behaviour on
 * the hardware, are {@code QuantizedKernelsGpuTest#mqwMatchesTheReference}'s.
 */
class MqwKernelOnTheCpuTest {
  @TempDir Path dir;

  @Test
  void theKernelSourceMultipliesTheLayoutsValues() throws Exception {
    Path harness = build();
    SplittableRandom rnd = new SplittableRandom(23);
    // spec, width: groups of 32, 64 and 128 (asymmetric too), Q4_0, 8-bit per row and in groups;
    // widths with a partial last window and of one chunk
    Object[][] cases = {
      {"I4:g128", 1152}, {"I4:g32:asym", 320}, {"I4:g64:asym", 64}, {"Q4_0", 576},
      {"I8", 544}, {"F8_E4M3", 800}, {"F8_E4M3:tensor", 32}, {"Q8_0", 1056}
    };
    int c = 0;
    for (Object[] cs : cases) {
      String spec = (String) cs[0];
      int in = (Integer) cs[1];
      // heights: under a tile, and over a block of 128 with a partial tile; rows: over one block
      // of 64 rows, and a few
      int out = c % 2 == 0 ? 150 : 9;
      int n = c % 3 == 0 ? 66 : 7;
      c++;
      check(harness, spec, out, in, n, rnd);
    }
  }

  private void check(Path harness, String spec, int out, int in, int n, SplittableRandom rnd)
      throws Exception {
    float[] w = new float[out * in];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) rnd.nextGaussian() * 0.1f;
    }
    Tensor t = QuantFixtures.quantize(w, out, in, QuantFixtures.Kind.parse(spec));
    QuantizedLayout q = QuantizedLayout.of(t, true);
    assertThat(q.tiled()).as("%s %dx%d tiled", spec, out, in).isTrue();
    int groupShift = DeviceTensor.DeviceQuant.groupShift(q.groupSize(), q.groupsPerRow());
    CudaKernels.MqCodes codes =
        q.bits() == 4
            ? CudaKernels.MqCodes.I4
            : q.format() == CudaKernels.QF_INT8 ? CudaKernels.MqCodes.I8 : CudaKernels.MqCodes.E4M3;
    assertThat(CudaKernels.mqwTakes(codes, in, groupShift)).as(spec).isTrue();
    short[] xh = new short[n * in];
    double[] x = new double[n * in];
    for (int i = 0; i < xh.length; i++) {
      xh[i] = Float.floatToFloat16((float) rnd.nextGaussian());
      x[i] = Float.float16ToFloat(xh[i]);
    }
    float[] base = new float[n * out];
    for (int i = 0; i < base.length; i++) {
      base[i] = (float) rnd.nextGaussian();
    }
    float[] want = new float[n * out];
    double scale = 0;
    for (int r = 0; r < n; r++) {
      for (int o = 0; o < out; o++) {
        double a = 0;
        for (int i = 0; i < in; i++) {
          a += q.value(o, i) * x[r * in + i];
        }
        want[r * out + o] = (float) (base[r * out + o] + a);
        scale = Math.max(scale, Math.abs(want[r * out + o]));
      }
    }
    int bx = ((out + 15) / 16 + 7) / 8;
    int by = (n + 63) / 64;
    int split = CudaKernels.mqwSplits(bx, by, in, n, out, 1L << 30, 132);
    for (int splits : split > 1 ? new int[] {split, 1} : new int[] {1}) {
      float[] got = run(harness, codes, q, groupShift, out, in, n, splits, xh, base);
      double err = 0;
      for (int i = 0; i < got.length; i++) {
        err = Math.max(err, Math.abs((double) got[i] - want[i]));
      }
      assertThat(err / scale)
          .as("mqw %s %dx%d, %d rows, %d splits", spec, out, in, n, splits)
          .isLessThan(5e-5);
    }
  }

  private float[] run(
      Path harness,
      CudaKernels.MqCodes codes,
      QuantizedLayout q,
      int groupShift,
      int out,
      int in,
      int n,
      int splits,
      short[] xh,
      float[] base)
      throws Exception {
    int codeBytes = (int) q.codeBytes();
    int zeroCount = q.zeros() == null ? 0 : q.zeros().length;
    ByteBuffer b =
        ByteBuffer.allocate(
                44
                    + codeBytes
                    + 4 * q.scales().length
                    + zeroCount
                    + 2 * xh.length
                    + 4 * base.length)
            .order(ByteOrder.LITTLE_ENDIAN);
    b.putInt(codes.ordinal()).putInt(out).putInt(in).putInt(n).putInt(groupShift);
    b.putInt(q.groupsPerRow()).putInt(1).putInt(splits).putInt(q.scales().length);
    b.putInt(zeroCount).putInt(codeBytes);
    TiledKernelSource.put(b, q, codeBytes);
    for (short h : xh) {
      b.putShort(h);
    }
    TiledKernelSource.put(b, base);
    return TiledKernelSource.run(harness, dir, b, n * out);
  }

  private Path build() throws Exception {
    String src = CudaKernels.source();
    String kernel =
        "typedef unsigned short u16;\n"
            + TiledKernelSource.helpers(src)
            + TiledKernelSource.section(
                src,
                "#define MQW_WARPS",
                "MQW_KERNEL(mqw8e, MQC_E4M3)",
                "extern __shared__ __align__(16) unsigned short mqw_smem[];",
                "unsigned short");
    return KernelOnTheCpu.build(
        dir, "the mqw kernels", kernel, "mqw_harness.cpp", "shim.h", "mq_shim.h");
  }
}
