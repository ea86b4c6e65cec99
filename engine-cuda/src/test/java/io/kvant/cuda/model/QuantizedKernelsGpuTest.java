package io.kvant.cuda.model;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.cuda.CudaBackend;
import io.kvant.cuda.GpuFixture;
import io.kvant.cuda.device.CudaDevice;
import io.kvant.cuda.device.CudaKernels;
import io.kvant.cuda.device.DeviceBuffer;
import io.kvant.engine.tensor.DType;
import io.kvant.engine.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The quantized-weight kernels against scalar references on random inputs (needs a GPU): the
 * weight-only GEMV for 1..32 rows, the tile decode + cuBLASLt path for more, and the decode kernels
 * bit for bit, over every type, with widths that are not multiples of 16 bytes, of the group size,
 * or of the kernels' warps.
 */
@Tag("gpu")
class QuantizedKernelsGpuTest {
  private static final String[] TYPES = {
    "I8", "I4:g128", "I4:g32:asym", "I4:g6", "F8_E4M3", "F8_E4M3:tensor", "F8_E5M2", "Q8_0", "Q4_0"
  };

  private CudaBackend backend;
  private CudaDevice dev;
  private DeviceWeightCache cache;
  private DeviceScratch mem;
  private final SplittableRandom rnd = new SplittableRandom(System.nanoTime());

  @BeforeEach
  void open() {
    backend = GpuFixture.backend();
    dev = backend.device();
    dev.makeCurrent();
    cache = new DeviceWeightCache(dev);
    mem = new DeviceScratch(dev, rnd.nextLong());
  }

  @AfterEach
  void free() {
    if (mem != null) { // null when the test was skipped
      mem.close();
    }
  }

  private static int[][] shapes(QuantFixtures.Kind k) {
    boolean blocks = k.type() == DType.Q8_0 || k.type() == DType.Q4_0;
    return blocks
        ? new int[][] {{37, 96}, {64, 4096}, {130, 288}, {21, 1056}}
        : new int[][] {{37, 172}, {64, 4096}, {130, 1000}, {9, 30}, {21, 2600}, {33, 1152}};
  }

  /** {@code y = base + x W^T} in double from the layout's values, optionally F16-rounded. */
  static float[] reference(QuantizedLayout q, float[] x, int n, float[] base, boolean f16) {
    return reference(q, x, n, base, f16, f16);
  }

  /**
   * {@code y = base + x W^T} in double from the layout's values, the weights ({@code f16W}) and the
   * activations ({@code f16X}) F16-rounded or not.
   */
  static float[] reference(
      QuantizedLayout q, float[] x, int n, float[] base, boolean f16W, boolean f16X) {
    int out = q.rows();
    int in = q.cols();
    float[] y = new float[n * out];
    for (int r = 0; r < n; r++) {
      for (int o = 0; o < out; o++) {
        double a = base == null ? 0 : base[r * out + o];
        for (int i = 0; i < in; i++) {
          float w = q.value(o, i);
          float xi = x[r * in + i];
          if (f16W) {
            w = Float.float16ToFloat(Float.floatToFloat16(w));
          }
          if (f16X) {
            xi = Float.float16ToFloat(Float.floatToFloat16(xi));
          }
          a += (double) w * xi;
        }
        y[r * out + o] = (float) a;
      }
    }
    return y;
  }

  static float bf16(float f) {
    int u = Float.floatToRawIntBits(f);
    u += 0x7fff + ((u >>> 16) & 1);
    return Float.intBitsToFloat(u & 0xffff0000);
  }

  /** Largest |a - b| over the largest |b|. */
  static double relError(float[] a, float[] b) {
    double max = 0;
    double scale = 0;
    for (int i = 0; i < a.length; i++) {
      max = Math.max(max, Math.abs((double) a[i] - b[i]));
      scale = Math.max(scale, Math.abs(b[i]));
    }
    return scale == 0 ? max : max / scale;
  }

  @ParameterizedTest
  @ValueSource(ints = {1, 3, 8, 13, 32, 33, 70})
  void productsMatchTheReference(int n) {
    QuantizedProducts products = new QuantizedProducts(backend.kernels(), backend.gemm());
    for (String spec : TYPES) {
      QuantFixtures.Kind kind = QuantFixtures.Kind.parse(spec);
      for (int[] shape : shapes(kind)) {
        int out = shape[0];
        int in = shape[1];
        Tensor t = QuantFixtures.quantize(mem.random(out * in, 0.1), out, in, kind);
        QuantizedLayout q = QuantizedLayout.of(t);
        DeviceTensor w = cache.acquire(t);
        try {
          float[] x = mem.random(n * in, 1);
          float[] base = mem.random(n * out, 1);
          boolean accumulate = (n + out) % 2 == 0;
          long y = mem.up(base);
          long tileElements = QuantizedProducts.tileElements((long) out * in) / 3 + 1;
          long tile = mem.alloc(2 * Math.max(tileElements, in));
          products.multiply(
              w,
              mem.up(x),
              mem.alloc(2L * n * in),
              tile,
              Math.max(tileElements, in),
              n,
              y,
              accumulate,
              false);
          float[] got = mem.down(y, n * out);
          boolean viaTensorCores = !QuantizedProducts.weightOnly(w, n);
          float[] want =
              reference(
                  q,
                  x,
                  n,
                  accumulate ? base : null,
                  viaTensorCores,
                  QuantizedProducts.halfActivations(w, n));
          assertThat(relError(got, want))
              .as("%s %dx%d, %d rows, accumulate %s", spec, out, in, n, accumulate)
              .isLessThan(viaTensorCores ? 2e-3 : 2e-5);
        } finally {
          cache.release(t);
        }
      }
    }
  }

  /** Every mgemv kind and work split, 1..4 rows, against a float64 reference. */
  @ParameterizedTest
  @ValueSource(ints = {1, 2, 3, 4})
  void mgemvMatchesTheReferenceForEveryKindAndVariant(int n) {
    CudaKernels k = backend.kernels();
    for (String spec : TYPES) {
      QuantFixtures.Kind kind = QuantFixtures.Kind.parse(spec);
      for (int[] shape : shapes(kind)) {
        int out = shape[0];
        int in = shape[1];
        Tensor t = QuantFixtures.quantize(mem.random(out * in, 0.1), out, in, kind);
        QuantizedLayout q = QuantizedLayout.of(t, false);
        DeviceTensor w = upload(q);
        {
          if (!QuantizedProducts.mgemvReads(w)) {
            continue;
          }
          var d = w.quant();
          float[] x = mem.random(n * in, 1);
          float[] base = mem.random(n * out, 1);
          float[] want = reference(q, x, n, base, false);
          for (CudaKernels.MgVariant v : CudaKernels.MgVariant.values()) {
            long y = mem.up(base);
            k.mgemv(
                d.bits() == 8 ? CudaKernels.MgKind.ofCodes8(d.format()) : CudaKernels.MgKind.I4,
                v,
                w.ptr(),
                d.ldw(),
                d.scales().ptr(),
                d.zerosPtr(),
                d.groupSize(),
                d.groupsPerRow(),
                mem.up(x),
                y,
                out,
                in,
                n,
                true);
            assertThat(relError(mem.down(y, n * out), want))
                .as("%s %dx%d, %d rows, %s", spec, out, in, n, v)
                .isLessThan(2e-5);
          }
        }
      }
    }
  }

  /**
   * {@code q} on the device as it is (row-major or tiled), its buffers freed with the scratch
   * memory: the weight cache would choose the layout itself.
   */
  private DeviceTensor upload(QuantizedLayout q) {
    DeviceBuffer codes = mem.keep(dev.upload(q.codes().asSlice(0, q.codeBytes())));
    DeviceBuffer scales = mem.keep(dev.upload(MemorySegment.ofArray(q.scales())));
    DeviceBuffer zeros =
        q.zeros() == null ? null : mem.keep(dev.upload(MemorySegment.ofArray(q.zeros())));
    var quant = DeviceTensor.DeviceQuant.of(q, scales, zeros);
    return new DeviceTensor(codes, CudaKernels.DT_F32, q.rows(), q.cols(), quant);
  }

  /**
   * Random dense BF16 or F16 weights on the device; {@code values} receives what they hold (the
   * rounded values), one per element.
   */
  private DeviceBuffer denseWeights(CudaKernels.MgKind kind, float[] values) {
    short[] codes = new short[values.length];
    for (int i = 0; i < codes.length; i++) {
      float v = (float) (rnd.nextGaussian() * 0.1);
      if (kind == CudaKernels.MgKind.F16) {
        codes[i] = Float.floatToFloat16(v);
        values[i] = Float.float16ToFloat(codes[i]);
      } else {
        values[i] = bf16(v);
        codes[i] = (short) (Float.floatToRawIntBits(values[i]) >>> 16);
      }
    }
    return mem.keep(dev.upload(MemorySegment.ofArray(codes)));
  }

  /** One matrix of a fused-launch test: its device form and its values. */
  private record Fused(CudaKernels.MgKind kind, MgOperand op, float[] values) {}

  private Fused fusedMatrix(String spec, int out, int in) {
    return fusedMatrix(spec, out, in, false);
  }

  /** One matrix of {@code spec}, quantized ones tiled or row-major as {@code tiled} says. */
  private Fused fusedMatrix(String spec, int out, int in, boolean tiled) {
    if (spec.equals("BF16") || spec.equals("F16")) {
      CudaKernels.MgKind kind = CudaKernels.MgKind.valueOf(spec);
      float[] values = new float[out * in];
      DeviceBuffer wb = denseWeights(kind, values);
      DeviceTensor t =
          new DeviceTensor(
              wb,
              kind == CudaKernels.MgKind.F16 ? CudaKernels.DT_F16 : CudaKernels.DT_BF16,
              out,
              in);
      return new Fused(kind, MgOperand.of(t, 1, MgemvSplits.DEFAULT.tiledRows()), values);
    }
    Tensor t =
        QuantFixtures.quantize(mem.random(out * in, 0.1), out, in, QuantFixtures.Kind.parse(spec));
    QuantizedLayout q = QuantizedLayout.of(t, tiled);
    DeviceTensor w = upload(q);
    float[] values = new float[out * in];
    for (int o = 0; o < out; o++) {
      for (int i = 0; i < in; i++) {
        values[o * in + i] = q.value(o, i);
      }
    }
    MgOperand op = MgOperand.of(w, 1, MgemvSplits.DEFAULT.tiledRows());
    return op == null ? null : new Fused(op.kind(), op, values);
  }

  private static double[] product(float[] w, int out, int in, double[] x, int n) {
    double[] y = new double[n * out];
    for (int r = 0; r < n; r++) {
      for (int o = 0; o < out; o++) {
        double a = 0;
        for (int i = 0; i < in; i++) {
          a += w[o * in + i] * x[r * in + i];
        }
        y[r * out + o] = a;
      }
    }
    return y;
  }

  /** Each {@code ys[i]} equals {@code bases[i] + xin W_i^T} (float64 reference) within 5e-5. */
  private void assertProducts(
      Fused[] m, int[] outs, int in, double[] xin, int n, float[][] bases, long[] ys, String what) {
    for (int i = 0; i < m.length; i++) {
      double[] p = product(m[i].values(), outs[i], in, xin, n);
      float[] want = new float[p.length];
      for (int j = 0; j < p.length; j++) {
        want[j] = (float) (bases[i][j] + p[j]);
      }
      assertThat(relError(mem.down(ys[i], n * outs[i]), want))
          .as("%s matrix %d %dx%d, %d rows", what, i, outs[i], in, n)
          .isLessThan(5e-5);
    }
  }

  /** {@code h} equals {@code silu(xin gate^T) * (xin up^T)} (float64 reference) within 5e-5. */
  private void assertSwiglu(
      Fused gate, Fused up, int out, int in, double[] xin, int n, long h, String what) {
    double[] g = product(gate.values(), out, in, xin, n);
    double[] u = product(up.values(), out, in, xin, n);
    float[] want = new float[g.length];
    for (int j = 0; j < g.length; j++) {
      want[j] = (float) (g[j] / (1 + Math.exp(-g[j])) * u[j]);
    }
    assertThat(relError(mem.down(h, n * out), want))
        .as("%s swiglu %dx%d, %d rows", what, out, in, n)
        .isLessThan(5e-5);
  }

  /**
   * {@code h} equals {@code silu(g) * u} of the float64 products {@code g} and {@code u} within
   * {@code tolerance} of {@code max|g| * max|u|}, for kernels whose products are each within {@code
   * e} of their largest value: then each output is off by at most about {@code (1.1 + 1) e max|g|
   * max|u|} (silu's slope is below 1.1, |silu(g)| at most |g|), whatever the outputs' own size.
   * Against the largest output instead, a random draw failed at 3.5e-3 on an H200 (perf/RESULTS.md,
   * session 39): of nine outputs the largest can be far smaller than the products (a negative
   * gate's silu is near 0). A wrong nibble or scale is off by the order of {@code max|g| max|u|}.
   */
  private void assertSwigluOfProducts(
      Fused gate,
      Fused up,
      int out,
      int in,
      double[] xin,
      int n,
      long h,
      String what,
      double tolerance) {
    double[] g = product(gate.values(), out, in, xin, n);
    double[] u = product(up.values(), out, in, xin, n);
    float[] got = mem.down(h, n * out);
    double gMax = 0;
    double uMax = 0;
    double err = 0;
    for (int j = 0; j < g.length; j++) {
      gMax = Math.max(gMax, Math.abs(g[j]));
      uMax = Math.max(uMax, Math.abs(u[j]));
      err = Math.max(err, Math.abs(got[j] - g[j] / (1 + Math.exp(-g[j])) * u[j]));
    }
    assertThat(err / (gMax * uMax))
        .as("%s swiglu %dx%d, %d rows, against max|g| max|u|", what, out, in, n)
        .isLessThan(tolerance);
  }

  /**
   * mgemv_fused against a float64 reference for every kind: three matrices of different heights in
   * one launch, with and without the RMS norm of the input, accumulating; and gate/up with SwiGLU.
   * Heights that are not multiples of a block's rows, widths as the other mgemv tests.
   */
  @ParameterizedTest
  @ValueSource(ints = {1, 2, 3, 4})
  void fusedMgemvMatchesTheReference(int n) {
    CudaKernels k = backend.kernels();
    List<String> specs = new ArrayList<>(List.of(TYPES));
    specs.add("BF16");
    specs.add("F16");
    for (String spec : specs) {
      int in = spec.startsWith("Q") ? 1056 : spec.equals("I4:g6") ? 30 : 1152;
      int[] outs = {37, 9, 130};
      Fused[] m = new Fused[3];
      for (int i = 0; i < 3; i++) {
        m[i] = fusedMatrix(spec, outs[i], in);
      }
      if (m[0] == null) {
        continue; // a layout mgemv does not read
      }
      float[] x = mem.random(n * in, 1);
      float[] normW = mem.random(in, 1);
      float eps = 1e-5f;
      for (CudaKernels.MgVariant v : CudaKernels.MgVariant.values()) {
        if (!v.fused(m[0].kind())) {
          continue;
        }
        for (boolean norm : new boolean[] {false, true}) {
          double[] xin = new double[n * in];
          for (int r = 0; r < n; r++) {
            double ss = 0;
            for (int i = 0; i < in; i++) {
              ss += (double) x[r * in + i] * x[r * in + i];
            }
            double inv = 1 / Math.sqrt(ss / in + eps);
            for (int i = 0; i < in; i++) {
              xin[r * in + i] = norm ? normW[i] * (x[r * in + i] * inv) : x[r * in + i];
            }
          }
          long[] ys = new long[3];
          float[][] bases = new float[3][];
          for (int i = 0; i < 3; i++) {
            bases[i] = mem.random(n * outs[i], 1);
            ys[i] = mem.up(bases[i]);
          }
          var op = m[0].op();
          k.mgemvFused(
              m[0].kind(),
              v,
              op.ldw(),
              op.groupSize(),
              op.groupsPerRow(),
              m[0].op().into(ys[0]),
              m[1].op().into(ys[1]),
              m[2].op().into(ys[2]),
              mem.up(x),
              in,
              n,
              true,
              norm ? mem.up(normW) : 0,
              eps,
              false);
          assertProducts(
              m, outs, in, xin, n, bases, ys, String.format("%s %s, norm %s", spec, v, norm));
          // gate and up (the first matrix and another of its height) with SwiGLU
          Fused upM = fusedMatrix(spec, outs[0], in);
          long h = mem.alloc(4L * n * outs[0]);
          k.mgemvFused(
              m[0].kind(),
              v,
              op.ldw(),
              op.groupSize(),
              op.groupsPerRow(),
              m[0].op().into(h),
              upM.op().into(mem.alloc(4L * n * outs[0])),
              null,
              mem.up(x),
              in,
              n,
              false,
              norm ? mem.up(normW) : 0,
              eps,
              true);
          assertSwiglu(
              m[0], upM, outs[0], in, xin, n, h, String.format("%s %s, norm %s", spec, v, norm));
        }
      }
    }
  }

  /**
   * mq4 and mq8 (tiled INT4, INT8 and FP8 E4M3 on the tensor cores) against a float64 reference of
   * the layout's values times the F16-rounded activations, every work split, 1..32 rows (one, two
   * and four mmas per fragment; above 16 rows the one split that has kernels there): three matrices
   * of heights that are not multiples of the 16-row tile in one launch, accumulating, with and
   * without the RMS norm (the reference rounds w * x to F16 and scales by the inverse RMS after, as
   * the kernel); gate/up with SwiGLU; symmetric and asymmetric groups of 32, 64 and 128, Q4_0; INT8
   * and FP8 with a scale per row or per tensor, Q8_0's groups of 32; widths of one chunk to many.
   */
  /**
   * mqw (the tiled products for wide batches) against a float64 reference: every code, group and
   * form that mq takes, heights that are not multiples of a tile (16) or of a block (128), row
   * counts that are not multiples of a block's 64, widths of one chunk to many windows with a
   * partial last window; each with the columns split (the last block adds the splits) and in one
   * piece (no partial buffer), accumulating into random outputs; and a second launch gives the same
   * bits (the split sums are added in a fixed order, whatever block arrives last).
   */
  @ParameterizedTest
  @ValueSource(ints = {1, 33, 64, 65, 130, 256})
  void mqwMatchesTheReference(int n) {
    CudaKernels k = backend.kernels();
    String[] specs = {
      "I4:g128", "I4:g32:asym", "I4:g64:asym", "Q4_0", "I8", "F8_E4M3", "F8_E4M3:tensor", "Q8_0"
    };
    int[] widths = {1152, 64, 4096, 1088, 4096, 96, 1056, 4000};
    for (int si = 0; si < specs.length; si++) {
      String spec = specs[si];
      int in = widths[si];
      float[] x = mem.random(n * in, 1);
      double[] xin = new double[n * in];
      for (int i = 0; i < n * in; i++) {
        xin[i] = Float.float16ToFloat(Float.floatToFloat16(x[i]));
      }
      long xh = mem.alloc(2L * n * in);
      k.cast(mem.up(x), xh, CudaKernels.DT_F16, (long) n * in);
      for (int out : new int[] {37, 300}) {
        Fused m = fusedMatrix(spec, out, in, true);
        assertThat(m.op().tiled()).as("%s %dx%d tiled", spec, out, in).isTrue();
        var op = m.op();
        double[] p = product(m.values(), out, in, xin, n);
        long partialBytes = 4L * 8 * n * out;
        long partial = mem.alloc(partialBytes);
        for (long room : new long[] {partialBytes, 0}) {
          float[] base = mem.random(n * out, 1);
          long y = mem.up(base);
          java.util.function.LongToIntFunction launch =
              into ->
                  k.mqw(
                      op.codes(),
                      op.into(into),
                      op.groupShift(),
                      op.groupsPerRow(),
                      xh,
                      in,
                      n,
                      true,
                      partial,
                      room);
          int splits = launch.applyAsInt(y);
          float[] want = new float[n * out];
          for (int j = 0; j < want.length; j++) {
            want[j] = (float) (base[j] + p[j]);
          }
          float[] got = mem.down(y, n * out);
          String what = String.format("mqw %s %dx%d, %d rows, %d splits", spec, out, in, n, splits);
          assertThat(relError(got, want)).as(what).isLessThan(5e-5);
          if (room == 0) {
            assertThat(splits).as(what).isEqualTo(1);
          }
          long again = mem.up(base);
          launch.applyAsInt(again);
          assertThat(mem.down(again, n * out)).as(what + ", again").isEqualTo(got);
        }
      }
    }
    // a width of many windows and few blocks is split
    assertThat(CudaKernels.mqwSplits(1, 1, 4096, 64, 37, 1L << 30, 132)).isEqualTo(8);
  }

  @ParameterizedTest
  @ValueSource(ints = {1, 2, 3, 5, 8, 9, 13, 16, 17, 24, 32})
  void mqMatchesTheReference(int n) {
    CudaKernels k = backend.kernels();
    String[] specs = {
      "I4:g128",
      "I4:g32:asym",
      "I4:g64:asym",
      "I4:g128:asym",
      "Q4_0",
      "I8",
      "F8_E4M3",
      "F8_E4M3:tensor",
      "Q8_0"
    };
    int[] widths = {1152, 64, 4096, 1152, 64, 1152, 32, 4096, 1056};
    for (int si = 0; si < specs.length; si++) {
      String spec = specs[si];
      int in = widths[si];
      int[] outs = {37, 9, 130};
      Fused[] m = new Fused[3];
      for (int i = 0; i < 3; i++) {
        m[i] = fusedMatrix(spec, outs[i], in, true);
        assertThat(m[i].op().tiled()).as("%s %dx%d tiled", spec, outs[i], in).isTrue();
      }
      float[] x = mem.random(n * in, 1);
      float[] normW = mem.random(in, 1);
      float eps = 1e-5f;
      for (CudaKernels.MqVariant v : CudaKernels.MqVariant.values()) {
        if (!v.takes(n)) {
          continue;
        }
        for (boolean norm : new boolean[] {false, true}) {
          double[] xin = new double[n * in];
          double[] inv = new double[n];
          for (int r = 0; r < n; r++) {
            double ss = 0;
            for (int i = 0; i < in; i++) {
              ss += (double) x[r * in + i] * x[r * in + i];
            }
            inv[r] = norm ? 1 / Math.sqrt(ss / in + eps) : 1;
            for (int i = 0; i < in; i++) {
              float a = norm ? normW[i] * x[r * in + i] : x[r * in + i];
              xin[r * in + i] = Float.float16ToFloat(Float.floatToFloat16(a)) * inv[r];
            }
          }
          long[] ys = new long[3];
          float[][] bases = new float[3][];
          for (int i = 0; i < 3; i++) {
            bases[i] = mem.random(n * outs[i], 1);
            ys[i] = mem.up(bases[i]);
          }
          var op = m[0].op();
          k.mq(
              op.codes(),
              v,
              m[0].op().into(ys[0]),
              m[1].op().into(ys[1]),
              m[2].op().into(ys[2]),
              op.groupShift(),
              op.groupsPerRow(),
              mem.up(x),
              in,
              n,
              true,
              norm ? mem.up(normW) : 0,
              eps,
              false);
          assertProducts(
              m, outs, in, xin, n, bases, ys, String.format("%s %s, norm %s", spec, v, norm));
          Fused upM = fusedMatrix(spec, outs[0], in, true);
          long h = mem.alloc(4L * n * outs[0]);
          k.mq(
              op.codes(),
              v,
              m[0].op().into(h),
              upM.op().into(mem.alloc(4L * n * outs[0])),
              null,
              op.groupShift(),
              op.groupsPerRow(),
              mem.up(x),
              in,
              n,
              false,
              norm ? mem.up(normW) : 0,
              eps,
              true);
          assertSwiglu(
              m[0], upM, outs[0], in, xin, n, h, String.format("%s %s, norm %s", spec, v, norm));
        }
      }
    }
  }

  /**
   * mqp4 (one row, symmetric INT4 in groups of 128, from units repacked on the device from the
   * tiled layout) against the float64 reference within 1e-3 of the largest output (it sums each
   * 8-column run in F16): three matrices of 40, 8 and 24 rows in one launch accumulating, with and
   * without the RMSNorm, and gate/up of 9 rows with SwiGLU (against the products' sizes: two
   * products meet in it); widths of one, four and fourteen units (the 8B shape's 4,096 and 14,336);
   * one to three row pairs a warp.
   */
  @Test
  void mqpMatchesTheReference() {
    CudaKernels k = backend.kernels();
    for (int in : new int[] {1024, 4096, 14336}) {
      assertThat(k.mqpTakes(in, 128, true)).isTrue();
      int[] outs = {40, 8, 24};
      Fused[] m = new Fused[3];
      long[] units = new long[3];
      for (int i = 0; i < 3; i++) {
        m[i] = fusedMatrix("I4:g128", outs[i], in, true);
        units[i] = mem.alloc(CudaKernels.mqpUnitBytes(outs[i] / 2, in));
        CudaKernels.MgMatrix mm = m[i].op().into(0);
        for (int side = 0; side < 2; side++) {
          k.mqpRepack(mm.w(), mm.scales(), in, in / 128, units[i], outs[i] / 2, 2, side, side);
        }
      }
      float[] x = mem.random(in, 1);
      float[] normW = mem.random(in, 1);
      float eps = 1e-5f;
      for (boolean norm : new boolean[] {false, true}) {
        double ss = 0;
        for (int i = 0; i < in; i++) {
          ss += (double) x[i] * x[i];
        }
        double inv = norm ? 1 / Math.sqrt(ss / in + eps) : 1;
        double[] xin = new double[in];
        for (int i = 0; i < in; i++) {
          float a = norm ? normW[i] * x[i] : x[i];
          xin[i] = Float.float16ToFloat(Float.floatToFloat16(a)) * inv;
        }
        long[] ys = new long[3];
        float[][] bases = new float[3][];
        for (int i = 0; i < 3; i++) {
          bases[i] = mem.random(outs[i], 1);
          ys[i] = mem.up(bases[i]);
        }
        k.mqp(
            new CudaKernels.MqpMatrix(units[0], ys[0], outs[0]),
            new CudaKernels.MqpMatrix(units[1], ys[1], outs[1]),
            new CudaKernels.MqpMatrix(units[2], ys[2], outs[2]),
            mem.up(x),
            in,
            true,
            norm ? mem.up(normW) : 0,
            eps,
            false,
            norm ? 2 : 1);
        for (int i = 0; i < 3; i++) {
          double[] p = product(m[i].values(), outs[i], in, xin, 1);
          float[] want = new float[p.length];
          for (int j = 0; j < p.length; j++) {
            want[j] = (float) (bases[i][j] + p[j]);
          }
          assertThat(relError(mem.down(ys[i], outs[i]), want))
              .as("mqp4 matrix %d %dx%d, norm %s (rounds %d)", i, outs[i], in, norm, norm ? 2 : 1)
              .isLessThan(1e-3);
        }
        Fused gate = fusedMatrix("I4:g128", 9, in, true);
        Fused up = fusedMatrix("I4:g128", 9, in, true);
        long gu = mem.alloc(CudaKernels.mqpUnitBytes(9, in));
        CudaKernels.MgMatrix gm = gate.op().into(0);
        CudaKernels.MgMatrix um = up.op().into(0);
        k.mqpRepack(gm.w(), gm.scales(), in, in / 128, gu, 9, 1, 0, 0);
        k.mqpRepack(um.w(), um.scales(), in, in / 128, gu, 9, 1, 0, 1);
        long h = mem.alloc(4L * 9);
        k.mqp(
            new CudaKernels.MqpMatrix(gu, h, 9),
            null,
            null,
            mem.up(x),
            in,
            false,
            norm ? mem.up(normW) : 0,
            eps,
            true,
            norm ? 1 : 3);
        // mqp4's products are within 1e-3 of their largest value (above), so its SwiGLU within
        // 2.1e-3 of
        // max|g| max|u|
        assertSwigluOfProducts(gate, up, 9, in, xin, 1, h, "mqp4 (norm " + norm + ")", 2.1e-3);
      }
    }
  }

  /** Rows {@code row0 .. row0 + rows} of the tiled matrix {@code w} decoded into {@code dst}. */
  private void decodeTiled(DeviceTensor w, long dst, int dtype, int row0, int rows) {
    var d = w.quant();
    backend
        .kernels()
        .dequantTiled(
            QuantizedProducts.codes(d),
            w.ptr(),
            d.scales().ptr(),
            d.zerosPtr(),
            d.groupShift(),
            d.groupsPerRow(),
            dst,
            dtype,
            row0,
            rows,
            w.rows(),
            w.cols());
  }

  /** mgemv over dense BF16 and F16 rows (the decode products of unquantized weights). */
  @ParameterizedTest
  @ValueSource(ints = {1, 2, 3, 4})
  void mgemvMatchesTheReferenceForDenseWeights(int n) {
    CudaKernels k = backend.kernels();
    for (CudaKernels.MgKind kind :
        new CudaKernels.MgKind[] {CudaKernels.MgKind.BF16, CudaKernels.MgKind.F16}) {
      for (int[] shape : new int[][] {{37, 8}, {64, 4096}, {130, 1000}, {21, 2600}, {5, 136}}) {
        int out = shape[0];
        int in = shape[1];
        float[] values = new float[out * in];
        DeviceBuffer wb = denseWeights(kind, values);
        float[] x = mem.random(n * in, 1);
        float[] want = new float[n * out];
        for (int r = 0; r < n; r++) {
          for (int o = 0; o < out; o++) {
            double a = 0;
            for (int i = 0; i < in; i++) {
              a += (double) values[o * in + i] * x[r * in + i];
            }
            want[r * out + o] = (float) a;
          }
        }
        for (CudaKernels.MgVariant v : CudaKernels.MgVariant.values()) {
          long y = mem.alloc(4L * n * out);
          k.mgemv(kind, v, wb.ptr(), 2L * in, 0, 0, 0, 0, mem.up(x), y, out, in, n, false);
          assertThat(relError(mem.down(y, n * out), want))
              .as("%s %dx%d, %d rows, %s", kind, out, in, n, v)
              .isLessThan(2e-5);
        }
      }
    }
  }

  @ParameterizedTest
  @ValueSource(
      strings = {"I8", "I4:g128", "I4:g32:asym", "I4:g6", "F8_E4M3", "F8_E5M2", "Q8_0", "Q4_0"})
  void decodeKernelsGiveTheLayoutsValuesExactly(String spec) {
    QuantFixtures.Kind kind = QuantFixtures.Kind.parse(spec);
    CudaKernels k = backend.kernels();
    for (int[] shape : shapes(kind)) {
      int out = shape[0];
      int in = shape[1];
      Tensor t = QuantFixtures.quantize(mem.random(out * in, 0.1), out, in, kind);
      QuantizedLayout q = QuantizedLayout.of(t);
      DeviceTensor w = cache.acquire(t);
      try {
        int row0 = out / 3;
        int rows = out - row0;
        long dst = mem.alloc(4L * rows * in);
        var d = w.quant();
        if (d.tiled()) {
          decodeTiled(w, dst, CudaKernels.DT_F32, row0, rows);
        } else if (d.bits() == 8) {
          k.dequant8(
              w.ptr(),
              d.ldw(),
              d.scales().ptr(),
              d.groupSize(),
              d.groupsPerRow(),
              d.format(),
              dst,
              CudaKernels.DT_F32,
              row0,
              rows,
              in);
        } else {
          k.dequant4(
              w.ptr(),
              d.ldw(),
              d.scales().ptr(),
              d.zerosPtr(),
              d.groupSize(),
              d.groupsPerRow(),
              dst,
              CudaKernels.DT_F32,
              row0,
              rows,
              in);
        }
        float[] got = mem.down(dst, rows * in);
        for (int r = 0; r < rows; r++) {
          for (int c = 0; c < in; c++) {
            assertThat(Float.floatToRawIntBits(got[r * in + c]))
                .as("%s %dx%d at [%d][%d]", spec, out, in, row0 + r, c)
                .isEqualTo(Float.floatToRawIntBits(t.get(row0 + r, c)));
          }
        }
        if ((QuantizedProducts.mgemvReads(w) && in % 8 == 0) || d.tiled()) {
          // the vectorised tile decode: the same values, rounded once to F16
          long tile = mem.alloc(2L * rows * in);
          if (d.tiled()) {
            decodeTiled(w, tile, CudaKernels.DT_F16, row0, rows);
          } else if (d.bits() == 8) {
            k.dequant8Tile(
                w.ptr(),
                d.ldw(),
                d.scales().ptr(),
                d.groupSize(),
                d.groupsPerRow(),
                d.format(),
                tile,
                CudaKernels.DT_F16,
                row0,
                rows,
                in);
          } else {
            k.dequant4Tile(
                w.ptr(),
                d.ldw(),
                d.scales().ptr(),
                d.zerosPtr(),
                d.groupSize(),
                d.groupsPerRow(),
                tile,
                CudaKernels.DT_F16,
                row0,
                rows,
                in);
          }
          short[] halves = new short[rows * in];
          dev.download(tile, MemorySegment.ofArray(halves));
          for (int r = 0; r < rows; r++) {
            for (int c = 0; c < in; c++) {
              assertThat(halves[r * in + c])
                  .as("%s tile %dx%d at [%d][%d]", spec, out, in, row0 + r, c)
                  .isEqualTo(Float.floatToFloat16(t.get(row0 + r, c)));
            }
          }
        }
      } finally {
        cache.release(t);
      }
    }
  }
}
