package io.kvant.cuda.model;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.cuda.CudaBackend;
import io.kvant.cuda.GpuFixture;
import io.kvant.cuda.device.CudaDevice;
import io.kvant.cuda.device.CudaKernels;
import io.kvant.engine.tensor.DType;
import io.kvant.engine.tensor.Fp8Codes;
import io.kvant.engine.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The W8A8 kernels and products against scalar references on random inputs (needs a GPU): the
 * per-row activation quantizer code for code, the epilogue against float64, and whole products
 * through {@link QuantizedProducts} with W8A8 forced, against a float64 product of the activations
 * quantized the same way, for 1..300 rows and widths that are not multiples of 16.
 */
@Tag("gpu")
class W8a8GpuTest {
  private static final int[] ROWS = {1, 5, 17, 64, 300};
  // cuBLASLt (measured on the H200) runs the INT8 code products at every shape here and the FP8
  // ones only where the outputs are a multiple of 16; the others fall back to the tiles
  private static final int[][] SHAPES = {
    {37, 172}, {64, 4096}, {132, 1000}, {9, 30}, {20, 2600}, {48, 1000}, {16, 30}, {33, 1152}
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
    cache = new DeviceWeightCache(dev, false);
    mem = new DeviceScratch(dev, rnd.nextLong());
  }

  @AfterEach
  void free() {
    if (mem != null) { // null when the test was skipped
      mem.close();
    }
  }

  /**
   * The scalar reference of {@code w8a8_quantize}: per row, {@code amax}, the scale {@code amax /
   * M} and the codes of {@code x * (M / amax)} (INT8 rounded half up and clamped, E4M3 by the CPU
   * encoder: nearest, ties to even, saturating), in the kernel's float operations.
   */
  static byte[] quantizeRows(float[] x, int n, int in, int ldq, float[] scales, int fmt) {
    byte[] codes = new byte[n * ldq];
    float maxCode = fmt == CudaKernels.QF_INT8 ? 127f : 448f;
    for (int r = 0; r < n; r++) {
      float amax = 0;
      for (int c = 0; c < in; c++) {
        amax = Math.max(amax, Math.abs(x[r * in + c]));
      }
      float inv = amax == 0 ? 0 : maxCode / amax;
      for (int c = 0; c < in; c++) {
        float v = x[r * in + c] * inv;
        int code;
        if (fmt == CudaKernels.QF_INT8) {
          code = Math.max(-127, Math.min(127, (int) Math.floor(v + 0.5f)));
        } else {
          code = Fp8Codes.encode(DType.F8_E4M3, v);
        }
        codes[r * ldq + c] = (byte) code;
      }
      scales[r] = amax == 0 ? 0 : amax / maxCode;
    }
    return codes;
  }

  static double codeValue(byte code, int fmt) {
    return fmt == CudaKernels.QF_INT8 ? code : Fp8Codes.decode(DType.F8_E4M3, code & 0xFF);
  }

  @ParameterizedTest
  @ValueSource(ints = {CudaKernels.QF_INT8, CudaKernels.QF_E4M3})
  void quantizeMatchesTheScalarReferenceCodeForCode(int fmt) {
    CudaKernels k = backend.kernels();
    for (int n : new int[] {1, 3, 70, 300}) {
      for (int in : new int[] {30, 172, 1000, 4099}) {
        int ldq = QuantizedLayout.align16(in);
        float[] x = mem.random(n * in, 2);
        // a zero row, one large outlier, tiny values (E4M3 subnormals after scaling)
        for (int c = 0; c < in; c++) {
          x[c] = 0;
        }
        if (n > 2) {
          x[in + in / 2] = 300f;
          for (int c = 0; c < in; c++) {
            x[2 * in + c] *= 1e-3f;
          }
          x[2 * in] = 1f;
        }
        MemorySegment garbage = MemorySegment.ofArray(new byte[n * ldq]).fill((byte) 0x55);
        long codes = mem.up(garbage);
        long scales = mem.alloc(4L * n);
        k.w8a8Quantize(mem.up(x), n, in, codes, ldq, scales, fmt);
        byte[] got = new byte[n * ldq];
        dev.download(codes, MemorySegment.ofArray(got));
        float[] wantScales = new float[n];
        byte[] want = quantizeRows(x, n, in, ldq, wantScales, fmt);
        assertThat(mem.down(scales, n))
            .as("scales, fmt %d, %d x %d", fmt, n, in)
            .isEqualTo(wantScales);
        assertThat(got).as("codes, fmt %d, %d x %d", fmt, n, in).isEqualTo(want);
      }
    }
  }

  @ParameterizedTest
  @ValueSource(booleans = {true, false})
  void epilogueMatchesTheFloat64Reference(boolean accInt) {
    CudaKernels k = backend.kernels();
    for (int n : new int[] {1, 7, 300}) {
      for (int out : new int[] {9, 130, 1001}) {
        int ld = W8a8Products.ldAcc(out) + 4;
        MemorySegment acc = MemorySegment.ofArray(new int[n * ld]);
        for (int i = 0; i < n * ld; i++) {
          if (accInt) {
            acc.setAtIndex(ValueLayout.JAVA_INT, i, rnd.nextInt(-(1 << 28), 1 << 28));
          } else {
            acc.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) (rnd.nextGaussian() * 1000));
          }
        }
        float[] rs = mem.random(n, 0.01);
        float[] cs = mem.random(out, 0.001);
        float[] base = mem.random(n * out, 1);
        for (boolean accumulate : new boolean[] {true, false}) {
          long y = mem.up(base);
          k.w8a8Epilogue(mem.up(acc), ld, accInt, mem.up(rs), mem.up(cs), y, out, n, accumulate);
          float[] got = mem.down(y, n * out);
          for (int r = 0; r < n; r++) {
            for (int c = 0; c < out; c++) {
              long i = (long) r * ld + c;
              double a =
                  accInt
                      ? acc.getAtIndex(ValueLayout.JAVA_INT, i)
                      : acc.getAtIndex(ValueLayout.JAVA_FLOAT, i);
              double p = a * rs[r] * cs[c];
              double want = (accumulate ? base[r * out + c] : 0) + p;
              assertThat((double) got[r * out + c])
                  .as("acc int %s, %d x %d at (%d, %d)", accInt, n, out, r, c)
                  .isCloseTo(want, org.assertj.core.data.Offset.offset(1e-6 * (Math.abs(p) + 1)));
            }
          }
        }
      }
    }
  }

  /** {@code base + x W^T} in float64 with {@code x} quantized per row as the kernel does. */
  static float[] reference(QuantizedLayout q, float[] x, int n, float[] base) {
    int out = q.rows();
    int in = q.cols();
    float[] scales = new float[n];
    byte[] codes = quantizeRows(x, n, in, in, scales, q.format());
    float[] y = new float[n * out];
    for (int r = 0; r < n; r++) {
      for (int o = 0; o < out; o++) {
        double a = 0;
        for (int i = 0; i < in; i++) {
          a += codeValue(codes[r * in + i], q.format()) * q.value(o, i);
        }
        y[r * out + o] = (float) ((base == null ? 0 : base[r * out + o]) + a * scales[r]);
      }
    }
    return y;
  }

  @ParameterizedTest
  @ValueSource(strings = {"I8", "F8_E4M3", "F8_E4M3:tensor"})
  void productsMatchTheQuantizedActivationReference(String spec) {
    QuantizedProducts products = new QuantizedProducts(backend.kernels(), backend.gemm());
    products.setW8a8MinRows(1);
    QuantFixtures.Kind kind = QuantFixtures.Kind.parse(spec);
    List<String> fellBack = new ArrayList<>();
    for (int[] shape : SHAPES) {
      int out = shape[0];
      int in = shape[1];
      Tensor t = QuantFixtures.quantize(mem.random(out * in, 0.1), out, in, kind);
      QuantizedLayout q = QuantizedLayout.of(t, true, false);
      DeviceTensor w = cache.acquire(t);
      try {
        assertThat(W8a8Products.reads(w)).isTrue();
        for (int n : ROWS) {
          float[] x = mem.random(n * in, 1);
          float[] base = mem.random(n * out, 1);
          boolean accumulate = (n + out) % 2 == 0;
          long y = mem.up(base);
          // a small accumulator (several GEMM passes) where the shape allows
          long tileElements = Math.max(QuantizedProducts.tileElements((long) out * in) / 3 + 1, in);
          long before = products.w8a8Runs();
          products.multiply(
              w,
              mem.up(x),
              mem.alloc(2L * n * in),
              mem.alloc(2 * tileElements),
              tileElements,
              n,
              y,
              accumulate,
              false);
          float[] got = mem.down(y, n * out);
          String what =
              String.format("%s %dx%d, %d rows, accumulate %s", spec, out, in, n, accumulate);
          if (products.w8a8Runs() == before) {
            fellBack.add(what);
            assertThat(q.format() == CudaKernels.QF_E4M3 && out % 16 != 0)
                .as("only FP8 with outputs not a multiple of 16 falls back: " + what)
                .isTrue();
            boolean tiles = !QuantizedProducts.weightOnly(w, n);
            float[] want =
                QuantizedKernelsGpuTest.reference(q, x, n, accumulate ? base : null, tiles);
            assertThat(QuantizedKernelsGpuTest.relError(got, want))
                .as("fallback " + what)
                .isLessThan(tiles ? 2e-3 : 2e-5);
            continue;
          }
          float[] want = reference(q, x, n, accumulate ? base : null);
          assertThat(QuantizedKernelsGpuTest.relError(got, want))
              .as(what)
              .isLessThan(q.format() == CudaKernels.QF_INT8 ? 1e-5 : 1e-3);
        }
      } finally {
        cache.release(t);
      }
    }
    System.out.println("W8A8 " + spec + ": fell back to tiles for " + fellBack);
  }

  /**
   * Two matrices of one input (a layer's k after q): the second product, told its input is the
   * first's, uses the first's codes and gives the bits it gives after quantizing on its own; a
   * different input, or a product on another path in between, makes it quantize again.
   */
  @ParameterizedTest
  @ValueSource(strings = {"I8", "F8_E4M3"})
  void productsOfOneInputQuantizeItOnce(String spec) {
    QuantizedProducts products = new QuantizedProducts(backend.kernels(), backend.gemm());
    products.setW8a8MinRows(1);
    QuantFixtures.Kind kind = QuantFixtures.Kind.parse(spec);
    int in = 256;
    int n = 48;
    Tensor a = QuantFixtures.quantize(mem.random(64 * in, 0.1), 64, in, kind);
    Tensor b = QuantFixtures.quantize(mem.random(32 * in, 0.1), 32, in, kind);
    Tensor other =
        QuantFixtures.quantize(mem.random(32 * in, 0.1), 32, in, QuantFixtures.Kind.parse("Q8_0"));
    DeviceTensor wa = cache.acquire(a);
    DeviceTensor wb = cache.acquire(b);
    DeviceTensor wo = cache.acquire(other);
    try {
      long x = mem.up(mem.random(n * in, 1));
      long x2 = mem.up(mem.random(n * in, 1));
      long scratch = mem.alloc(2L * n * in);
      long tileElements = 64L * in;
      long tile = mem.alloc(2 * tileElements);
      long ya = mem.alloc(4L * n * 64);
      long yb = mem.alloc(4L * n * 32);
      long yOwn = mem.alloc(4L * n * 32);
      products.multiply(wb, x, scratch, tile, tileElements, n, yOwn, false, false);
      long q0 = products.w8a8Quantizations();
      products.multiply(wa, x, scratch, tile, tileElements, n, ya, false, false);
      products.multiply(wb, x, scratch, tile, tileElements, n, yb, false, true);
      assertThat(products.w8a8Quantizations() - q0)
          .as("one quantization for two products")
          .isEqualTo(1);
      assertThat(products.w8a8Runs()).isEqualTo(3);
      assertThat(mem.down(yb, n * 32)).isEqualTo(mem.down(yOwn, n * 32));

      // another input at the same call: quantized, whatever the caller says
      products.multiply(wb, x2, scratch, tile, tileElements, n, yb, false, true);
      assertThat(products.w8a8Quantizations() - q0).isEqualTo(2);
      // a product on the tiles in between (it writes the scratch as F16): quantized again
      products.multiply(
          wo, x2, scratch, tile, tileElements, n, mem.alloc(4L * n * 32), false, false);
      products.multiply(wb, x2, scratch, tile, tileElements, n, yb, false, true);
      assertThat(products.w8a8Quantizations() - q0).isEqualTo(3);
      products.multiply(wb, x, scratch, tile, tileElements, n, yb, false, false);
      dev.synchronize();
      assertThat(mem.down(yb, n * 32)).isEqualTo(mem.down(yOwn, n * 32));
    } finally {
      cache.release(a);
      cache.release(b);
      cache.release(other);
    }
  }

  /**
   * A feed-forward block on W8A8 with the gate and up accumulators going straight to the down
   * product's codes ({@code w8a8_swiglu_quantize}) against the same block apart (two products with
   * their epilogues, {@code swiglu}, the down product quantizing h): the same output bits.
   */
  @ParameterizedTest
  @ValueSource(strings = {"I8", "F8_E4M3"})
  void swigluCodesGiveTheProductsApartBits(String spec) {
    QuantizedProducts products = new QuantizedProducts(backend.kernels(), backend.gemm());
    products.setW8a8MinRows(1);
    QuantFixtures.Kind kind = QuantFixtures.Kind.parse(spec);
    int dim = 256;
    int hidden = 512;
    int n = 48;
    Tensor gate = QuantFixtures.quantize(mem.random(hidden * dim, 0.1), hidden, dim, kind);
    Tensor up = QuantFixtures.quantize(mem.random(hidden * dim, 0.1), hidden, dim, kind);
    Tensor down = QuantFixtures.quantize(mem.random(dim * hidden, 0.1), dim, hidden, kind);
    DeviceTensor wg = cache.acquire(gate);
    DeviceTensor wu = cache.acquire(up);
    DeviceTensor wd = cache.acquire(down);
    try {
      long x = mem.up(mem.random(n * dim, 1));
      float[] base = mem.random(n * dim, 1);
      long scratch = mem.alloc(2L * n * hidden);
      long tileElements = (long) hidden * dim;
      long tile = mem.alloc(2 * tileElements);

      long g = mem.alloc(4L * n * hidden);
      long u = mem.alloc(4L * n * hidden);
      long apart = mem.up(base);
      products.multiply(wg, x, scratch, tile, tileElements, n, g, false, false);
      products.multiply(wu, x, scratch, tile, tileElements, n, u, false, true);
      backend.kernels().swiglu(g, u, g, (long) n * hidden, CudaKernels.DT_F32);
      products.multiply(wd, g, scratch, tile, tileElements, n, apart, true, false);
      assertThat(products.w8a8Runs()).isEqualTo(3);

      long g2 = mem.alloc(4L * n * hidden);
      long u2 = mem.alloc(4L * n * hidden);
      long fused = mem.up(base);
      long q0 = products.w8a8Quantizations();
      assertThat(
              products.swigluCodes(
                  wg, wu, wd, x, n, g2, u2, scratch, tileElements, fused, true, false))
          .isTrue();
      products.multiply(wd, g2, scratch, tile, tileElements, n, fused, true, true);
      assertThat(products.w8a8Quantizations() - q0).as("x, then h").isEqualTo(2);
      assertThat(products.w8a8Runs()).isEqualTo(6);
      dev.synchronize();
      float[] want = mem.down(apart, n * dim);
      assertThat(mem.down(fused, n * dim)).as(spec).isEqualTo(want);
      assertThat(want).as("the block changed y").isNotEqualTo(base);
    } finally {
      cache.release(gate);
      cache.release(up);
      cache.release(down);
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"F8_E5M2", "Q8_0", "I4:g128", "Q4_0"})
  void otherLayoutsKeepTheirPathWhenW8a8IsForced(String spec) {
    QuantizedProducts products = new QuantizedProducts(backend.kernels(), backend.gemm());
    products.setW8a8MinRows(1);
    Tensor t =
        QuantFixtures.quantize(mem.random(64 * 256, 0.1), 64, 256, QuantFixtures.Kind.parse(spec));
    DeviceTensor w = cache.acquire(t);
    try {
      int n = 40;
      long tileElements = 64L * 256;
      products.multiply(
          w,
          mem.up(mem.random(n * 256, 1)),
          mem.alloc(2L * n * 256),
          mem.alloc(2 * tileElements),
          tileElements,
          n,
          mem.alloc(4L * n * 64),
          false,
          false);
      dev.synchronize();
      assertThat(products.w8a8Runs()).isZero();
    } finally {
      cache.release(t);
    }
  }
}
