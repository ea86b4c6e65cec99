package io.kvant.quant.quantize;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kvant.engine.tensor.DType;
import io.kvant.engine.tensor.Fp8Codes;
import io.kvant.engine.tensor.Int4Tensor;
import io.kvant.engine.tensor.Tensor;
import io.kvant.engine.tensor.Tensors;
import io.kvant.quant.encoding.TensorEncoding;
import io.kvant.quant.encoding.WeightFormat;
import java.lang.foreign.MemorySegment;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Formats and round-trip error bounds of the quantized weight types. (Vector kernels against their
 * scalar references on awkward sizes: TensorMatmulTest / TensorDecodeTest cover every DType.)
 */
class QuantKernelsTest {
  private static final int[][] SHAPES = {{1, 1}, {3, 7}, {5, 64}, {7, 172}, {4, 257}};

  @Test
  void fp8TablesFollowTheOcpDefinitions() {
    assertThat(Fp8Codes.decode(DType.F8_E4M3, 0x7E)).isEqualTo(448f);
    assertThat(Fp8Codes.decode(DType.F8_E4M3, 0x01)).isEqualTo(0x1p-9f);
    assertThat(Fp8Codes.decode(DType.F8_E4M3, 0x38)).isEqualTo(1f);
    assertThat(Fp8Codes.decode(DType.F8_E4M3, 0x7F)).isNaN();
    assertThat(Fp8Codes.decode(DType.F8_E5M2, 0x7B)).isEqualTo(57344f);
    assertThat(Fp8Codes.decode(DType.F8_E5M2, 0x01)).isEqualTo(0x1p-16f);
    assertThat(Fp8Codes.decode(DType.F8_E5M2, 0x7C)).isInfinite();
    assertThat(Fp8Codes.decode(DType.F8_E5M2, 0xBC)).isEqualTo(-1f);
  }

  @Test
  void fp8EncodeInvertsDecodeAndRoundsToNearest() {
    for (DType t : new DType[] {DType.F8_E4M3, DType.F8_E5M2}) {
      for (int code = 0; code < 256; code++) {
        float v = Fp8Codes.decode(t, code);
        if (Float.isFinite(v) && !(v == 0 && code != 0 && code != 0x80)) {
          assertThat(Fp8Codes.decode(t, Fp8Codes.encode(t, v))).isEqualTo(v);
        }
      }
      Random rnd = new Random(3);
      for (int i = 0; i < 2000; i++) {
        float x = (float) (rnd.nextGaussian() * Math.pow(2, rnd.nextInt(12) - 6));
        float q = Fp8Codes.decode(t, Fp8Codes.encode(t, x));
        // No finite code is closer than the chosen one.
        for (int code = 0; code < 256; code++) {
          float v = Fp8Codes.decode(t, code);
          if (Float.isFinite(v)) {
            assertThat(Math.abs(x - q)).isLessThanOrEqualTo(Math.abs(x - v));
          }
        }
      }
      assertThat(Fp8Codes.decode(t, Fp8Codes.encode(t, 1e9f))).isEqualTo(Fp8Codes.maxFinite(t));
    }
  }

  @Test
  void fp8RejectsNonFiniteCodes() {
    assertThatThrownBy(
            () ->
                Tensors.fp8(
                    DType.F8_E4M3,
                    1,
                    2,
                    MemorySegment.ofArray(new byte[] {0, 0x7F}),
                    new float[] {1}))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("not finite");
  }

  @Test
  void int4LayoutSplitsEachGroupIntoLowAndHighNibbles() {
    // 1 row, 10 columns, groups of 4: groups [0..4) [4..8) [8..10); h = 2, 2, 1.
    byte[] packed = new byte[5];
    packed[0] = 0x21; // col0 = 1, col2 = 2
    packed[1] = 0x43; // col1 = 3, col3 = 4
    packed[2] = 0x65; // col4 = 5, col6 = 6
    packed[3] = 0x07; // col5 = 7, col7 = 0
    packed[4] = 0x09; // col8 = 9, col9 = 0 (h = 1: col9 is the high nibble of byte 4)
    Int4Tensor t =
        Tensors.int4(1, 10, 4, MemorySegment.ofArray(packed), new float[] {1, 1, 1}, new byte[3]);
    int[] expected = {1, 3, 2, 4, 5, 7, 6, 0, 9, 0};
    for (int c = 0; c < 10; c++) {
      assertThat(t.code(0, c)).as("col " + c).isEqualTo(expected[c]);
      assertThat(t.get(0, c)).isEqualTo(expected[c]);
    }
    assertThat(t.storageBytes()).isEqualTo(5 + 12 + 3);
  }

  @Test
  void int4RejectsBadZeroPointsAndScales() {
    MemorySegment codes = MemorySegment.ofArray(new byte[2]);
    assertThatThrownBy(() -> Tensors.int4(1, 4, 4, codes, new float[] {1}, new byte[] {16}))
        .hasMessageContaining("zero point");
    assertThatThrownBy(() -> Tensors.int4(1, 4, 4, codes, new float[] {Float.NaN}, null))
        .hasMessageContaining("NaN");
    assertThatThrownBy(() -> Tensors.int4(1, 4, 3, codes, new float[] {1, 1}, null))
        .hasMessageContaining("even");
  }

  /**
   * Minmax quantization: every element within half a step (INT) or half an FP8 ulp of its value.
   */
  @Test
  void roundTripErrorIsWithinHalfAStep() {
    Random rnd = new Random(11);
    for (int[] shape : SHAPES) {
      int rows = shape[0];
      int cols = shape[1];
      float[] w = new float[rows * cols];
      for (int i = 0; i < w.length; i++) {
        w[i] = (float) (rnd.nextGaussian() * 0.1);
      }
      for (QuantSpec spec :
          new QuantSpec[] {
            QuantSpec.int8(Method.MINMAX),
            QuantSpec.int4(32, true, Method.MINMAX),
            QuantSpec.int4(64, false, Method.MINMAX),
            QuantSpec.int4(128, true, Method.MINMAX),
            QuantSpec.fp8(WeightFormat.FP8_E4M3, false, Method.MINMAX),
            QuantSpec.fp8(WeightFormat.FP8_E5M2, true, Method.MINMAX)
          }) {
        WeightQuantizer.Result r = WeightQuantizer.quantize("t", w, rows, cols, spec, null);
        Tensor t = r.tensor();
        TensorEncoding e = r.encoding();
        for (int row = 0; row < rows; row++) {
          for (int c = 0; c < cols; c++) {
            int unit =
                switch (e.granularity()) {
                  case PER_TENSOR -> 0;
                  case PER_CHANNEL -> row;
                  case PER_BLOCK ->
                      row * ((cols + e.blockSize() - 1) / e.blockSize()) + c / e.blockSize();
                };
            float s = e.scale()[unit];
            float x = w[row * cols + c];
            double err = Math.abs(x - t.get(row, c));
            double bound =
                spec.format().name().startsWith("FP8")
                    ? Math.abs(x) * (spec.format() == WeightFormat.FP8_E4M3 ? 0x1p-4 : 0x1p-3)
                        + s * 0x1p-8
                    : s * 0.5000001;
            assertThat(err)
                .as(spec.label() + " " + rows + "x" + cols)
                .isLessThanOrEqualTo(bound + 1e-9);
          }
        }
      }
    }
  }

  @Test
  void mseClippingNeverIncreasesTheRoundingError() {
    Random rnd = new Random(5);
    int rows = 8;
    int cols = 172;
    float[] w = new float[rows * cols];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) (rnd.nextGaussian() * (rnd.nextInt(50) == 0 ? 1.0 : 0.05));
    }
    for (int g : new int[] {32, 64, 128}) {
      double minmax =
          sse(
              w,
              WeightQuantizer.quantize(
                      "t", w, rows, cols, QuantSpec.int4(g, true, Method.MINMAX), null)
                  .tensor());
      double mse =
          sse(
              w,
              WeightQuantizer.quantize(
                      "t", w, rows, cols, QuantSpec.int4(g, true, Method.MSE), null)
                  .tensor());
      assertThat(mse).isLessThan(minmax);
    }
  }

  @Test
  void q4_0EncoderMatchesTheGgmlRule() {
    float[] w = new float[32];
    for (int i = 0; i < 32; i++) {
      w[i] = (i - 10) * 0.125f;
    }
    Tensor t = GgmlEncoders.q4_0(w, 1, 32);
    // Largest magnitude is 21 * 0.125 = 2.625 (positive), so d = -2.625 / 8 and x = d * (q - 8).
    float d = Float.float16ToFloat(Float.floatToFloat16(-2.625f / 8));
    assertThat(t.get(0, 31)).isEqualTo(d * -8);
    for (int i = 0; i < 32; i++) {
      assertThat(Math.abs(t.get(0, i) - w[i])).isLessThanOrEqualTo(Math.abs(d) * 0.51f);
    }
  }

  private static double sse(float[] w, Tensor t) {
    float[] d = WeightQuantizer.dequantize(t);
    double s = 0;
    for (int i = 0; i < w.length; i++) {
      s += (w[i] - d[i]) * (double) (w[i] - d[i]);
    }
    return s;
  }
}
