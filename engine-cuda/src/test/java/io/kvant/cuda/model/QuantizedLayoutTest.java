package io.kvant.cuda.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kvant.cuda.device.CudaKernels;
import io.kvant.engine.tensor.DType;
import io.kvant.engine.tensor.Tensor;
import io.kvant.engine.tensor.Tensors;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The device layouts of quantized weights (runs without a GPU): every value the layout decodes, as
 * the kernels decode it, equals the CPU tensor's value bit for bit, for shapes whose rows are not
 * 16-byte multiples and whose width is not a multiple of the group size.
 */
class QuantizedLayoutTest {
  @ParameterizedTest
  @ValueSource(
      strings = {
        "I8",
        "I4:g128",
        "I4:g32:asym",
        "I4:g6",
        "I4:g64:asym",
        "F8_E4M3",
        "F8_E4M3:tensor",
        "F8_E5M2",
        "Q8_0",
        "Q4_0"
      })
  void layoutDecodesTheTensorsValuesExactly(String spec) {
    QuantFixtures.Kind kind = QuantFixtures.Kind.parse(spec);
    boolean blocks = kind.type() == DType.Q8_0 || kind.type() == DType.Q4_0;
    int[][] shapes =
        blocks
            ? new int[][] {{7, 96}, {5, 32}, {3, 288}}
            : new int[][] {{7, 172}, {5, 100}, {3, 257}, {2, 1}, {4, 512}};
    SplittableRandom rnd = new SplittableRandom(spec.hashCode());
    for (int[] shape : shapes) {
      int rows = shape[0];
      int cols = shape[1];
      Tensor t = QuantFixtures.quantize(randomWeights(rnd, rows * cols), rows, cols, kind);
      QuantizedLayout q = QuantizedLayout.of(t);
      assertThat(q.ldw() % 16).isZero();
      assertThat(q.codes().byteSize()).isGreaterThanOrEqualTo((long) rows * q.ldw());
      assertDecodesExactly(q, t, spec);
    }
  }

  /**
   * The tiled layouts (mq4's and mq8's): taken for 4-bit widths that are multiples of 64 and
   * power-of-two groups of 32 or more, and for INT8 / FP8 E4M3 widths that are multiples of 32 (one
   * scale per row, per tensor, or Q8_0's groups of 32); every value equal to the tensor's bit for
   * bit (with random codes, a misplaced or doubly written code would change values), rows not a
   * multiple of the 16-row tile, codes padded to whole tiles; other shapes keep the row-major
   * layout.
   */
  @ParameterizedTest
  @ValueSource(
      strings = {
        "I4:g128",
        "I4:g32:asym",
        "I4:g64:asym",
        "I4:g32",
        "Q4_0",
        "I8",
        "F8_E4M3",
        "F8_E4M3:tensor",
        "Q8_0"
      })
  void tiledLayoutDecodesTheTensorsValuesExactly(String spec) {
    QuantFixtures.Kind kind = QuantFixtures.Kind.parse(spec);
    SplittableRandom rnd = new SplittableRandom(spec.hashCode());
    for (int[] shape : new int[][] {{1, 128}, {17, 256}, {33, 1024}, {16, 384}}) {
      int rows = shape[0];
      int cols = shape[1];
      Tensor t = QuantFixtures.quantize(randomWeights(rnd, rows * cols), rows, cols, kind);
      QuantizedLayout q = QuantizedLayout.of(t);
      int rowBytes = q.bits() == 8 ? cols : cols / 2;
      assertThat(q.tiled()).as("%s %dx%d", spec, rows, cols).isTrue();
      assertThat(q.ldw()).isEqualTo(rowBytes);
      assertThat(q.codeBytes()).isEqualTo((rows + 15) / 16 * 16L * rowBytes);
      assertThat(QuantizedLayout.of(t, false).tiled()).isFalse();
      assertThat(QuantizedLayout.of(t, q.bits() == 8, q.bits() == 4).tiled()).isFalse();
      assertDecodesExactly(q, t, spec);
    }
    assertThat(QuantizedLayout.tiles(4, 0, 96, 32, 3)).isFalse();
    assertThat(QuantizedLayout.tiles(4, 0, 192, 96, 2)).isFalse();
    assertThat(QuantizedLayout.tiles(4, 0, 128, 16, 8)).isFalse();
    assertThat(QuantizedLayout.tiles(4, 0, 128, 128, 1)).isTrue();
    assertThat(QuantizedLayout.tiles(8, CudaKernels.QF_INT8, 14336, 14336, 1)).isTrue();
    assertThat(QuantizedLayout.tiles(8, CudaKernels.QF_INT8, 100, 100, 1)).isFalse();
    assertThat(QuantizedLayout.tiles(8, CudaKernels.QF_E5M2, 128, 128, 1)).isFalse();
    assertThat(QuantizedLayout.tiles(8, CudaKernels.QF_INT8, 96, 48, 2)).isFalse();
  }

  /** Gaussian weights with an outlier every seventh value (wide and narrow groups alike). */
  private static float[] randomWeights(SplittableRandom rnd, int count) {
    float[] w = new float[count];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) rnd.nextGaussian() * (i % 7 == 0 ? 3f : 0.2f);
    }
    return w;
  }

  /** Every value of {@code q} equals {@code t}'s bit for bit. */
  private static void assertDecodesExactly(QuantizedLayout q, Tensor t, String spec) {
    for (int r = 0; r < t.rows(); r++) {
      for (int c = 0; c < t.cols(); c++) {
        assertThat(Float.floatToRawIntBits(q.value(r, c)))
            .as("%s %dx%d at [%d][%d]", spec, t.rows(), t.cols(), r, c)
            .isEqualTo(Float.floatToRawIntBits(t.get(r, c)));
      }
    }
  }

  @Test
  void rowsThatAreSixteenByteMultiplesAreUploadedWithoutACopy() {
    float[] w = new float[4 * 64];
    Tensor t = QuantFixtures.int8(w, 4, 64);
    assertThat(QuantizedLayout.of(t, false).codes()).isSameAs(t.data());
  }

  @Test
  void denseTypesHaveNoQuantizedLayout() {
    Tensor t = Tensors.of(DType.F32, 1, 4, MemorySegment.ofArray(new float[4]));
    assertThat(QuantizedLayout.handles(DType.F32)).isFalse();
    assertThatThrownBy(() -> QuantizedLayout.of(t))
        .isInstanceOf(UnsupportedOperationException.class)
        .hasMessageContaining("F32");
  }
}
