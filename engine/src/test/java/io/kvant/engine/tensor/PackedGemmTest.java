package io.kvant.engine.tensor;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.engine.tensor.packed.PackedMatrix;
import io.kvant.engine.tensor.packed.QuantizedInput;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The cache-blocked GEMM ({@link PackedMatrix#matmulTiled}) against the scalar reference and the
 * per-panel kernels, bit for bit: every packed layout (Q8_0, I8 and asymmetric I4 as 8-bit codes;
 * Q4_0 and symmetric I4 as nibbles), shapes that are not multiples of the tile sizes (outputs not a
 * multiple of a panel or of a panel group, blocks not a multiple of a chunk), and 1 to 300 input
 * rows (micro-kernel passes, and the rows left over).
 */
class PackedGemmTest {
  private static final int[] OUTPUTS = {33, 4 * PackedMatrix.PANEL + 5};
  private static final int[] COLS = {32, 160, 288};
  private static final int[] BATCHES = {1, 2, 7, 8, 9, 15, 16, 17, 31, 64, 100, 257, 300};

  @Test
  void tiledEqualsScalarReferenceAndPanelKernelsForEveryLayout() {
    Random rnd = new Random(42);
    try (ComputePool pool = new ComputePool(1)) {
      for (int rows : OUTPUTS) {
        for (int cols : COLS) {
          for (Tensor w : tensors(rows, cols, rnd)) {
            PackedMatrix m = PackedMatrix.pack(w, pool);
            assertThat(m).as("%s packs", w).isNotNull();
            for (int batch : BATCHES) {
              check(w, m, batch, rnd);
            }
          }
        }
      }
    }
  }

  @Test
  void narrowMatricesTakeTheGemmOnlyForMoreRows() {
    assertThat(PackedMatrix.takesTiled(PackedMatrix.TILED_MIN_ROWS - 1, 2048)).isFalse();
    assertThat(PackedMatrix.takesTiled(PackedMatrix.TILED_MIN_ROWS, 2048)).isTrue();
    assertThat(PackedMatrix.takesTiled(16, 256)).isFalse();
    assertThat(PackedMatrix.takesTiled(PackedMatrix.TILED_NARROW_MIN_ROWS, 256)).isTrue();
    assertThat(PackedMatrix.takesTiled(PackedMatrix.TILED_MID_MIN_ROWS - 1, 576)).isFalse();
    assertThat(PackedMatrix.takesTiled(PackedMatrix.TILED_MID_MIN_ROWS, 576)).isTrue();
    assertThat(PackedMatrix.takesTiled(PackedMatrix.TILED_MID_MIN_ROWS, 768)).isTrue();
    assertThat(PackedMatrix.takesTiled(PackedMatrix.TILED_MIN_ROWS, 768)).isFalse();
  }

  @Test
  void eachLayoutTakesTheGemmFromItsOwnSwitchOver() {
    Random rnd = new Random(5);
    try (ComputePool pool = new ComputePool(1)) {
      PackedMatrix q4 = PackedMatrix.pack(RandomTensors.random(DType.Q4_0, 40, 2048, rnd), pool);
      PackedMatrix q8 = PackedMatrix.pack(RandomTensors.random(DType.Q8_0, 40, 2048, rnd), pool);
      assertThat(q8.takesTiled(PackedMatrix.TILED_MIN_ROWS)).isFalse();
      assertThat(q8.takesTiled(PackedMatrix.BYTE_TILED_MIN_ROWS - 1)).isFalse();
      assertThat(q8.takesTiled(PackedMatrix.BYTE_TILED_MIN_ROWS)).isTrue();
      assertThat(q4.takesTiled(PackedMatrix.TILED_MIN_ROWS)).isFalse();
      assertThat(q4.takesTiled(PackedMatrix.NIBBLE_TILED_MIN_ROWS - 1)).isFalse();
      assertThat(q4.takesTiled(PackedMatrix.NIBBLE_TILED_MIN_ROWS)).isTrue();
      PackedMatrix narrow = PackedMatrix.pack(RandomTensors.random(DType.Q4_0, 40, 256, rnd), pool);
      assertThat(narrow.takesTiled(PackedMatrix.NIBBLE_TILED_MIN_ROWS)).isFalse();
      assertThat(narrow.takesTiled(PackedMatrix.TILED_NARROW_MIN_ROWS)).isTrue();
    }
  }

  @Test
  void matmulPicksTheTiledKernelFromTheSwitchOverAndKeepsTheBits() {
    Random rnd = new Random(9);
    try (ComputePool pool = new ComputePool(1)) {
      Tensor w = RandomTensors.random(DType.Q4_0, 70, 96, rnd);
      PackedMatrix m = PackedMatrix.pack(w, pool);
      for (int batch :
          new int[] {PackedMatrix.TILED_MIN_ROWS - 1, PackedMatrix.TILED_MIN_ROWS, 2 * 64 + 3}) {
        QuantizedInput xq = quantized(batch, 96, rnd);
        float[] viaMatmul = new float[batch * 70];
        float[] byPanel = new float[batch * 70];
        m.matmul(xq, viaMatmul);
        m.matmulByPanel(xq, byPanel, 0, m.panels());
        assertThat(viaMatmul).as("batch %d", batch).isEqualTo(byPanel);
      }
    }
  }

  private static void check(Tensor w, PackedMatrix m, int batch, Random rnd) {
    int rows = w.rows();
    QuantizedInput xq = quantized(batch, w.cols(), rnd);
    float[] reference = new float[batch * rows];
    m.matmulReference(xq, reference, 0, m.panels());
    float[] tiled = new float[batch * rows];
    m.matmulTiled(xq, tiled, 0, m.panels());
    String what = w.dtype() + " " + rows + "x" + w.cols() + " batch " + batch;
    assertThat(tiled).as(what).isEqualTo(reference);
    float[] byPanel = new float[batch * rows];
    m.matmulByPanel(xq, byPanel, 0, m.panels());
    assertThat(byPanel).as(what).isEqualTo(reference);

    // Split at odd panel boundaries (as the worker team would): same bits, and only the range's
    // outputs are written.
    float[] split = new float[batch * rows];
    Arrays.fill(split, Float.NaN);
    int cut = Math.min(1, m.panels());
    m.matmulTiled(xq, split, cut, m.panels());
    for (int b = 0; b < batch; b++) {
      for (int r = 0; r < cut * PackedMatrix.PANEL && r < rows; r++) {
        assertThat(split[b * rows + r]).as("%s untouched", what).isNaN();
      }
    }
    m.matmulTiled(xq, split, 0, cut);
    assertThat(split).as(what).isEqualTo(reference);
  }

  private static QuantizedInput quantized(int batch, int cols, Random rnd) {
    QuantizedInput xq = new QuantizedInput();
    xq.quantize(RandomTensors.randomInput(batch * cols, rnd), batch, cols);
    return xq;
  }

  /** Q8_0, Q4_0, I8 (codes down to -128), and I4 symmetric and with zero points. */
  private static List<Tensor> tensors(int rows, int cols, Random rnd) {
    List<Tensor> ts = new ArrayList<>();
    ts.add(RandomTensors.random(DType.Q8_0, rows, cols, rnd));
    ts.add(RandomTensors.random(DType.Q4_0, rows, cols, rnd));
    ts.add(RandomTensors.random(DType.I8, rows, cols, rnd));
    for (boolean zeroPoints : new boolean[] {false, true}) {
      int group = cols % 64 == 0 ? 64 : 32;
      int groups = rows * ((cols + group - 1) / group);
      byte[] codes = new byte[(int) DType.I4.byteSize(rows, cols)];
      rnd.nextBytes(codes);
      float[] scales = new float[groups];
      byte[] zeros = zeroPoints ? new byte[groups] : null;
      for (int i = 0; i < groups; i++) {
        scales[i] = RandomTensors.randomScale(rnd);
        if (zeros != null) {
          zeros[i] = (byte) rnd.nextInt(16);
        }
      }
      ts.add(Tensors.int4(rows, cols, group, MemorySegment.ofArray(codes), scales, zeros));
    }
    return ts;
  }
}
