package io.kvant.engine.tensor;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kvant.engine.tensor.packed.CodeSlabs;
import io.kvant.engine.tensor.packed.PackedMatrix;
import io.kvant.engine.tensor.packed.QuantizedInput;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** The integer kernels against their scalar reference and against the float tensor they pack. */
class PackedMatrixTest {
  // 200: seven panels, the last partial: one-row passes of four panels, then two, then one
  private static final int[] ROWS = {1, 31, PackedMatrix.PANEL, PackedMatrix.PANEL + 1, 70, 200};
  private static final int[] COLS = {32, 96, 256};

  @ParameterizedTest
  @EnumSource(
      value = DType.class,
      names = {"Q8_0", "Q4_0", "I8", "I4"})
  void vectorKernelEqualsScalarReferenceAndTheFloatTensor(DType type) {
    Random rnd = new Random(type.ordinal() * 31L + 7);
    try (ComputePool pool = new ComputePool(2)) {
      for (int rows : ROWS) {
        for (int cols : COLS) {
          Tensor w = RandomTensors.random(type, rows, cols, rnd);
          PackedMatrix m = PackedMatrix.pack(w, pool);
          if (w instanceof Int4Tensor i4 && i4.groupSize() % 32 != 0) {
            assertThat(m).as("I4 groups of %d have no integer kernel", i4.groupSize()).isNull();
            continue;
          }
          assertThat(m).isNotNull();
          // 1: one row; 2 and 3: the two-row kernel (then one row); 4 and 6: the four-row
          // kernel, then the rest; 9 and 17: the eight-row passes, then the rest.
          for (int batch : new int[] {1, 2, 3, 4, 6, 9, 17}) {
            check(w, m, batch, rnd);
          }
        }
      }
    }
  }

  /**
   * The 8-bit one-row pass over four panels at once on rows as wide as a 1B model's (64 blocks),
   * wider than {@link #COLS} (where the same pass runs on narrow rows): 200 rows (six full panels
   * and a part) of 2,048 columns give a four-panel pass and three single panels, and the split in
   * {@link #check} other mixes of them.
   */
  @ParameterizedTest
  @EnumSource(
      value = DType.class,
      names = {"Q8_0", "I8"})
  void eightBitMultiPanelPassesEqualTheScalarReference(DType type) {
    Random rnd = new Random(type.ordinal() * 17L + 3);
    try (ComputePool pool = new ComputePool(2)) {
      Tensor w = RandomTensors.random(type, 200, 2048, rnd);
      PackedMatrix m = PackedMatrix.pack(w, pool);
      for (int batch : new int[] {1, 2}) {
        check(w, m, batch, rnd);
      }
    }
  }

  private static void check(Tensor w, PackedMatrix m, int batch, Random rnd) {
    int rows = w.rows();
    int cols = w.cols();
    float[] x = RandomTensors.randomInput(batch * cols, rnd);
    QuantizedInput xq = new QuantizedInput();
    xq.quantize(x, batch, cols);
    float[] vector = new float[batch * rows];
    float[] reference = new float[batch * rows];
    m.matmul(xq, vector);
    m.matmulReference(xq, reference, 0, m.panels());
    assertThat(vector).as("%s %dx%d batch %d", w.dtype(), rows, cols, batch).isEqualTo(reference);

    // A split over panel ranges gives the same bits.
    float[] split = new float[batch * rows];
    int mid = m.panels() / 2;
    m.matmul(xq, split, mid, m.panels());
    m.matmul(xq, split, 0, mid);
    assertThat(split).isEqualTo(vector);

    // Against the float weights times the dequantized activations, in double.
    for (int b = 0; b < batch; b++) {
      float[] deq = new float[cols];
      for (int c = 0; c < cols; c++) {
        deq[c] = xq.scale(b, c / 32) * xq.code(b, c);
      }
      for (int r = 0; r < rows; r++) {
        double exact = RandomTensors.dotReference(w, r, deq, 0);
        double bound = RandomTensors.absDot(w, r, deq, 0) * 1e-5 + 1e-30;
        assertThat((double) vector[b * rows + r])
            .as("%s row %d input %d", w.dtype(), r, b)
            .isCloseTo(exact, org.assertj.core.data.Offset.offset(bound));
      }
    }
  }

  @Test
  void quantizedActivationsAreWithinHalfAStepAndNeverMinus128() {
    Random rnd = new Random(3);
    int cols = 128;
    float[] x = RandomTensors.randomInput(2 * cols, rnd);
    x[5] = 0f;
    java.util.Arrays.fill(x, 32, 64, 0f); // an all-zero block gets scale 0 and codes 0
    x[70] = -1e-30f;
    QuantizedInput q = new QuantizedInput();
    q.quantize(x, 2, cols);
    for (int b = 0; b < 2; b++) {
      for (int c = 0; c < cols; c++) {
        float d = q.scale(b, c / 32);
        int code = q.code(b, c);
        assertThat(code).isBetween(-127, 127);
        assertThat((double) Math.abs(x[b * cols + c] - d * code)).isLessThanOrEqualTo(d * 0.5001);
      }
    }
    assertThat(q.scale(0, 1)).isZero();
    assertThat(q.code(0, 40)).isZero();
  }

  @Test
  void badShapesAreRefused() {
    QuantizedInput q = new QuantizedInput();
    assertThatThrownBy(() -> q.quantize(new float[48], 1, 48))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("multiple of 32");
    assertThatThrownBy(() -> q.quantize(new float[32], 2, 32))
        .isInstanceOf(IndexOutOfBoundsException.class);
    Random rnd = new Random(5);
    try (ComputePool pool = new ComputePool(1)) {
      PackedMatrix m = PackedMatrix.pack(RandomTensors.random(DType.Q8_0, 8, 64, rnd), pool);
      q.quantize(new float[32], 1, 32);
      assertThatThrownBy(() -> m.matmul(q, new float[8]))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("32 columns");
      assertThat(PackedMatrix.pack(RandomTensors.random(DType.F16, 8, 64, rnd), pool)).isNull();
      assertThat(PackedMatrix.pack(RandomTensors.random(DType.I8, 8, 40, rnd), pool)).isNull();
    }
  }

  /**
   * Q8_0/Q4_0 scales are F16 in the file, so the packed copy keeps them in 2 bytes: the same
   * results, bit for bit, as the same weights packed with float scales and as the scalar reference,
   * for every kernel (one row, pairs of panels, two and four rows, the GEMM), with zero, negative
   * zero, subnormal and the largest F16 scales among them.
   */
  @ParameterizedTest
  @EnumSource(
      value = DType.class,
      names = {"Q8_0", "Q4_0"})
  void ggmlScalesAreKeptAsF16WithTheSameBits(DType type) {
    short[] special = {
      0x0000, (short) 0x8000, 0x0001, (short) 0x83FF, 0x03FF, 0x7BFF, (short) 0xFBFF
    };
    Random rnd = new Random(type.ordinal() * 17L + 3);
    int rows = 3 * PackedMatrix.PANEL + 5;
    int cols = 256;
    int blockBytes = type.blockBytes();
    int blocks = rows * cols / 32;
    byte[] bytes = new byte[blocks * blockBytes];
    rnd.nextBytes(bytes);
    ByteBuffer buf = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
    for (int b = 0; b < blocks; b++) {
      short h =
          b % 5 == 0
              ? special[rnd.nextInt(special.length)]
              : Float.floatToFloat16(RandomTensors.randomScale(rnd));
      buf.putShort(b * blockBytes, h);
    }
    Tensor w = Tensors.of(type, rows, cols, MemorySegment.ofArray(bytes).asReadOnly());
    try (ComputePool pool = new ComputePool(2)) {
      PackedMatrix half = PackedMatrix.pack(w, pool);
      PackedMatrix full = PackedMatrix.pack(w, pool, false);
      assertThat(half.halfScales()).isTrue();
      assertThat(full.halfScales()).isFalse();
      long scales = (long) half.panels() * (cols / 32) * PackedMatrix.PANEL;
      assertThat(full.storageBytes() - half.storageBytes()).isEqualTo(2 * scales);
      sameBits(w, half, full, rnd);
    }
  }

  /**
   * The Q4_0 per-panel kernels keep a block's sums in 16-bit lanes, and multiply unmasked nibble
   * units by differences of activation pairs (modulo {@code 2^16}): at the extremes (every nibble 0
   * or 15, every activation code 127 or -127, where a lane's sum reaches {@code 16 * 15 * 127})
   * they still give the reference's bits, for one row, pairs of panels, two, four and eight rows.
   */
  @Test
  void nibbleKernelsAreExactAtTheExtremes() {
    Random rnd = new Random(23);
    int rows = 2 * PackedMatrix.PANEL + 3;
    int cols = 256;
    byte[] patterns = {0x00, (byte) 0xFF, 0x0F, (byte) 0xF0};
    Tensor w = patternRows(DType.Q4_0, rows, cols, patterns, 2, rnd);
    try (ComputePool pool = new ComputePool(2)) {
      PackedMatrix m = PackedMatrix.pack(w, pool);
      // 8, 9, 16 and 17: the eight-row pass over packed nibbles (NibbleRows8), then the rest.
      for (int batch : new int[] {1, 2, 3, 4, 5, 8, 9, 16, 17}) {
        float[] reference = exact(m, signRows(batch, cols, rnd), batch, rows);
        // row 1: every weight 7, against input row 0: every value 1
        assertThat(reference[1]).isCloseTo(7f * 256f, org.assertj.core.data.Offset.offset(1e-2f));
      }
    }
  }

  /**
   * The 8-bit kernels' block sums at their extremes: weights of -128, 127 and -127 (whole rows of
   * one, and rows mixing them) against activations of +-127, so a column pair's 16-bit sum reaches
   * +-32512 and a block's +-520,192, where the biased accumulation (PackedQ8's class note) must
   * still be exact: the reference's bits, for one, two, four and more rows.
   */
  @Test
  void byteKernelsAreExactAtTheExtremes() {
    Random rnd = new Random(29);
    int rows = 2 * PackedMatrix.PANEL + 5;
    int cols = 256;
    byte[] patterns = {(byte) -128, 127, (byte) -127};
    Tensor w = patternRows(DType.Q8_0, rows, cols, patterns, 3, rnd);
    try (ComputePool pool = new ComputePool(2)) {
      PackedMatrix m = PackedMatrix.pack(w, pool);
      for (int batch : new int[] {1, 2, 3, 4, 5, 8, 9, 16, 17}) {
        float[] reference = exact(m, signRows(batch, cols, rnd), batch, rows);
        // row 0: every weight -128, against input row 0: every value 1 (code 127, scale 1/127)
        assertThat(reference[0])
            .isCloseTo(-128f * 256f, org.assertj.core.data.Offset.offset(1e-1f));
      }
    }
  }

  /**
   * A {@code type} (Q4_0 or Q8_0) matrix of scale-1.0 blocks whose code bytes come from {@code
   * patterns}: row {@code r} all pattern {@code r % (fixed + 1)}, except every row with {@code r %
   * (fixed + 1) == fixed}, which mixes all patterns at random.
   */
  private static Tensor patternRows(
      DType type, int rows, int cols, byte[] patterns, int fixed, Random rnd) {
    int blockBytes = type.blockBytes();
    int blocks = rows * cols / 32;
    byte[] bytes = new byte[blocks * blockBytes];
    for (int b = 0; b < blocks; b++) {
      int r = b / (cols / 32);
      int at = b * blockBytes;
      bytes[at] = 0x00; // F16 1.0, little-endian
      bytes[at + 1] = 0x3C;
      for (int j = 2; j < blockBytes; j++) {
        int k = r % (fixed + 1);
        bytes[at + j] = k == fixed ? patterns[rnd.nextInt(patterns.length)] : patterns[k];
      }
    }
    return Tensors.of(type, rows, cols, MemorySegment.ofArray(bytes).asReadOnly());
  }

  /** Input rows of +-1 (codes +-127): row 0 all 1, row 1 all -1, the others random signs. */
  private static QuantizedInput signRows(int batch, int cols, Random rnd) {
    float[] x = new float[batch * cols];
    for (int i = 0; i < x.length; i++) {
      int b = i / cols;
      x[i] = b == 0 ? 1f : b == 1 ? -1f : (rnd.nextBoolean() ? 1f : -1f);
    }
    QuantizedInput xq = new QuantizedInput();
    xq.quantize(x, batch, cols);
    assertThat(xq.code(0, 0)).isEqualTo(127);
    return xq;
  }

  /**
   * {@code m}'s reference product of {@code xq}, after checking the per-panel and whole products
   * give its bits.
   */
  private static float[] exact(PackedMatrix m, QuantizedInput xq, int batch, int rows) {
    float[] reference = new float[batch * rows];
    m.matmulReference(xq, reference, 0, m.panels());
    float[] byPanel = new float[batch * rows];
    m.matmulByPanel(xq, byPanel, 0, m.panels());
    assertThat(byPanel).as("by panel, batch %d", batch).isEqualTo(reference);
    float[] whole = new float[batch * rows];
    m.matmul(xq, whole);
    assertThat(whole).as("whole, batch %d", batch).isEqualTo(reference);
    return reference;
  }

  /**
   * I8 scales that are not F16 values stay floats (the fallback); I8 scales that all are F16 values
   * are kept in 2 bytes. Either way the results are the reference's and the float-scale copy's.
   */
  @Test
  void int8ScalesFallBackToFloatUnlessAllAreF16() {
    Random rnd = new Random(11);
    int rows = 2 * PackedMatrix.PANEL + 3;
    int cols = 128;
    byte[] codes = new byte[rows * cols];
    rnd.nextBytes(codes);
    float[] inexact = new float[rows];
    float[] exact = new float[rows];
    for (int r = 0; r < rows; r++) {
      exact[r] = Float.float16ToFloat(Float.floatToFloat16(RandomTensors.randomScale(rnd)));
      inexact[r] = exact[r];
    }
    inexact[rows / 2] = Math.nextUp(inexact[rows / 2]); // one scale off the F16 grid is enough
    MemorySegment seg = MemorySegment.ofArray(codes).asReadOnly();
    try (ComputePool pool = new ComputePool(2)) {
      Tensor fallback = Tensors.int8(rows, cols, seg, inexact);
      PackedMatrix m = PackedMatrix.pack(fallback, pool);
      assertThat(m.halfScales()).isFalse();
      sameBits(fallback, m, PackedMatrix.pack(fallback, pool, false), rnd);

      Tensor onGrid = Tensors.int8(rows, cols, seg, exact);
      PackedMatrix h = PackedMatrix.pack(onGrid, pool);
      assertThat(h.halfScales()).isTrue();
      sameBits(onGrid, h, PackedMatrix.pack(onGrid, pool, false), rnd);
    }
  }

  /**
   * {@code a} and {@code b} (the same weights) give the same bits as each other and the reference.
   */
  /** Codes carved from shared huge-page slabs multiply as codes in their own allocation do. */
  @ParameterizedTest
  @EnumSource(
      value = DType.class,
      names = {"Q8_0", "Q4_0"})
  void codesInSharedSlabsGiveTheSameBits(DType type) {
    Random rnd = new Random(type.ordinal() * 17L + 3);
    CodeSlabs slabs = CodeSlabs.forThisOs();
    try (ComputePool pool = new ComputePool(2)) {
      for (int rows : ROWS) {
        Tensor w = RandomTensors.random(type, rows, 96, rnd);
        PackedMatrix inSlab = PackedMatrix.pack(w, pool, true, slabs);
        PackedMatrix own = PackedMatrix.pack(w, pool);
        assertThat(inSlab.storageBytes()).isEqualTo(own.storageBytes());
        sameBits(w, inSlab, own, rnd);
      }
    }
    assertThat(slabs.slabs()).as("small matrices share one slab").isEqualTo(1);
  }

  private static void sameBits(Tensor w, PackedMatrix a, PackedMatrix b, Random rnd) {
    int rows = w.rows();
    int cols = w.cols();
    for (int batch : new int[] {1, 2, 3, 4, 6, 9, 16}) {
      float[] x = RandomTensors.randomInput(batch * cols, rnd);
      QuantizedInput xq = new QuantizedInput();
      xq.quantize(x, batch, cols);
      float[] reference = new float[batch * rows];
      b.matmulReference(xq, reference, 0, b.panels());
      float[] ra = new float[batch * rows];
      a.matmulReference(xq, ra, 0, a.panels());
      assertThat(ra).as("%s reference, batch %d", w.dtype(), batch).isEqualTo(reference);
      for (PackedMatrix m : new PackedMatrix[] {a, b}) {
        float[] byPanel = new float[batch * rows];
        m.matmulByPanel(xq, byPanel, 0, m.panels());
        assertThat(byPanel)
            .as("%s panels, batch %d, F16 %s", w.dtype(), batch, m.halfScales())
            .isEqualTo(reference);
        float[] tiled = new float[batch * rows];
        m.matmulTiled(xq, tiled, 0, m.panels());
        assertThat(tiled)
            .as("%s GEMM, batch %d, F16 %s", w.dtype(), batch, m.halfScales())
            .isEqualTo(reference);
      }
    }
  }
}
