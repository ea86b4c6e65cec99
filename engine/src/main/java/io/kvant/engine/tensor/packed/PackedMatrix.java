package io.kvant.engine.tensor.packed;

import io.kvant.engine.tensor.ComputePool;
import io.kvant.engine.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Objects;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * A quantized weight matrix repacked for integer dot products with {@link QuantizedInput}
 * activations: {@code out[b][r] = sum_k (wScale[r][k] * xScale[b][k]) * sum_j w[r][k*32+j] *
 * xq[b][k*32+j]}, the inner sum in integers, float only at block boundaries.
 *
 * <p>Design note: rows are interleaved in panels of {@link #PANEL} rows (the 16-bit lane count of
 * the preferred vector shape: 32 with AVX-512), so one vector lane holds one output row (or, for
 * nibbles, one row's even or odd column: {@link PackedQ4}) and a block's dot products never need a
 * horizontal sum. For 8-bit codes, each column's {@code PANEL} weights are contiguous bytes: a
 * kernel loads them, widens them to 16-bit lanes ({@code B2S}), multiplies by the activation code
 * broadcast as a short, and accumulates. The int8 Java has no {@code vpmaddubsw}/{@code vpdpbusd};
 * widening to 16 bits and multiplying lane-wise is the closest the Vector API gets, and with one
 * row per lane it costs a handful of instructions per 32 multiply-adds instead of a decode, a store
 * and a reload per weight. The last panel is padded with zero rows. Packing copies the weights
 * (off-heap, freed with this object); the original tensor is kept for everything else (embedding
 * rows, the float reference path).
 *
 * <p>Batched decode (8 to 31 rows of nibbles, 8 to 63 of 8-bit codes) runs eight input rows per
 * pass over a panel ({@link NibbleRows8}, {@link ByteRows8}): the weights are taken from the packed
 * panel into registers once per eight rows, nothing is decoded to memory. Many input rows (prefill
 * chunks, large batches) take a cache-blocked GEMM instead ({@link #matmulTiled}, {@link
 * #takesTiled(int)}): the per-panel passes stream every input row through the cache once per panel,
 * and at many rows the GEMM's once-per-call tile decode costs less than that.
 *
 * <p>Block scales are kept as F16 (2 bytes) where every one of a matrix is an F16 value (always for
 * Q4_0 and Q8_0, whose scales are F16 in the file; for I8/I4 when their float scales happen to be),
 * else as floats: single-stream decode streams the packed weights once per token, and F16 scales
 * make that 10% (Q4_0) and 5.5% (Q8_0) fewer bytes, the file's size. The values, and so the
 * results, are the same either way.
 *
 * <p>Numerics: the integer block sums are exact; each row's float accumulator gets {@code fma(sum,
 * wScale * xScale, acc)} once per block in increasing block order, so results are bitwise
 * independent of batch size, panel range and thread split, and equal {@link #matmulReference}.
 *
 * <p>Immutable after construction and thread-safe.
 */
public abstract sealed class PackedMatrix permits PackedQ8, PackedQ4 {
  static final VectorSpecies<Short> S = ShortVector.SPECIES_PREFERRED;
  static final VectorSpecies<Integer> I = IntVector.SPECIES_PREFERRED;
  static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
  static final VectorSpecies<Byte> BP =
      VectorSpecies.of(byte.class, VectorShape.forBitSize(S.vectorBitSize() / 2));

  /**
   * F16 to float by integer bits, in the kernels. A block's {@code PANEL} F16 scales are stored
   * pairwise, row {@code i} of the first half of the panel (the first float vector) in the low and
   * row {@code i} of the second half in the high 16 bits of int {@code i}, so one short vector load
   * seen as ints holds both halves. The high half arithmetically shifted right by 3 (the low half
   * shifted left by 16 first) and masked with {@code F16_MASK} is a float with the F16's sign, and
   * its exponent and mantissa in the low exponent and high mantissa bits; times {@code F16_SCALE}
   * ({@code 2^112}) that is the F16's value, exactly, subnormals and zeros included (infinities and
   * NaNs are never stored as F16). Seven vector instructions per block and {@code PANEL} rows, no
   * shuffle. Spelled out in each kernel: as a helper method C2 did not inline it into the big
   * kernels ({@code NodeCountInliningCutoff}), and the boxed vectors made the one-row Q4_0 pass
   * about 1.7x slower in a probe.
   */
  static final int F16_MASK = 0x8FFFE000;

  static final float F16_SCALE = 0x1p112f;

  /** Rows per panel: one per 16-bit lane. */
  public static final int PANEL = S.length();

  static final int BLOCK = QuantizedInput.BLOCK;

  /** Input rows {@link #panel4} takes per pass over a panel. */
  static final int ROWS_PER_PASS = 4;

  /**
   * Floats of the per-call scratch the per-panel kernels get: eight float vectors of sums, and
   * eight more for {@code PackedQ8.panelQuad}'s block sums.
   */
  static final int SCRATCH = 16 * F.length();

  final int rows;
  final int cols;
  final int blocks;
  final int panels;
  final MemorySegment codes;

  /**
   * {@code [panel][block][PANEL]}: the scale of each row's block (0 in padding rows) as F16 bits,
   * the rows of a block paired ({@link #halfSlot}), when every scale is a finite F16 value
   * (Q4_0/Q8_0: their scales are F16 in the file), else {@code null} and the scales are in {@link
   * #scales}.
   */
  final short[] halfScales;

  /** The scales as floats, same layout, where they are not all F16 ({@code null} otherwise). */
  final float[] scales;

  PackedMatrix(BlockSource src, long codeBytesPerPanel, boolean half, CodeSlabs slabs) {
    this.rows = src.rows;
    this.cols = src.cols;
    this.blocks = src.blocks();
    this.panels = (rows + PANEL - 1) / PANEL;
    long bytes = codeBytesPerPanel * panels;
    this.codes = slabs != null ? slabs.allocate(bytes) : Arena.ofAuto().allocate(bytes, 64);
    int n = panels * blocks * PANEL;
    this.halfScales = half ? new short[n] : null;
    this.scales = half ? null : new float[n];
  }

  /**
   * {@code t} packed for the integer kernels, or {@code null} if its type has none (only Q8_0,
   * Q4_0, I8, and I4 with groups a multiple of 32 do) or its columns are not a multiple of 32.
   * Nibble-range types (Q4_0, symmetric I4) keep 4 bits per weight; the others 8. Panels are packed
   * in parallel on {@code pool}.
   */
  public static PackedMatrix pack(Tensor t, ComputePool pool) {
    return pack(t, pool, true);
  }

  /**
   * {@link #pack}; with {@code halfScales} false the block scales are kept as floats even where
   * they are all F16 values (for comparisons: the results are the same bits either way).
   */
  public static PackedMatrix pack(Tensor t, ComputePool pool, boolean halfScales) {
    return pack(t, pool, halfScales, null);
  }

  /**
   * {@link #pack} with the codes in memory from {@code slabs} (huge pages where the OS gives them),
   * or in an allocation of their own where {@code slabs} is {@code null}.
   */
  public static PackedMatrix pack(Tensor t, ComputePool pool, boolean halfScales, CodeSlabs slabs) {
    BlockSource src = BlockSource.of(t);
    if (src == null) {
      return null;
    }
    boolean half = halfScales && src.scalesAreHalf();
    PackedMatrix m =
        src.fitsNibble() ? new PackedQ4(src, half, slabs) : new PackedQ8(src, half, slabs);
    pool.parallelRanges(m.panels, 1, (start, end) -> m.fill(src, start, end));
    return m;
  }

  /** Whether the block scales are stored as F16 (2 bytes each) rather than as floats. */
  public final boolean halfScales() {
    return halfScales != null;
  }

  /**
   * Where the F16 scale of panel row {@code i} sits within its block's {@code PANEL} shorts: pairs
   * of the two halves' rows ({@link #F16_MASK}).
   */
  static int halfSlot(int i) {
    int h = PANEL / 2;
    return i < h ? 2 * i : 2 * (i - h) + 1;
  }

  /** Stores the scale of panel row {@code i}'s block {@code k} of panel {@code p}. */
  final void putScale(int p, int k, int i, float s) {
    int at = (p * blocks + k) * PANEL;
    if (halfScales != null) {
      halfScales[at + halfSlot(i)] = Float.floatToFloat16(s);
    } else {
      scales[at + i] = s;
    }
  }

  /** The scale of panel row {@code i}'s block {@code k} of panel {@code p}, as a float. */
  final float scale(int p, int k, int i) {
    int at = (p * blocks + k) * PANEL;
    return halfScales != null ? Float.float16ToFloat(halfScales[at + halfSlot(i)]) : scales[at + i];
  }

  /**
   * Blocks {@code [k0, k0 + nb)} of panel {@code p}'s scales as floats into {@code dst[at ..)},
   * {@code PANEL} per block (the GEMMs' per-tile copy).
   */
  final void decodeScales(int p, int k0, int nb, float[] dst, int at) {
    int from = (p * blocks + k0) * PANEL;
    if (halfScales == null) {
      System.arraycopy(scales, from, dst, at, nb * PANEL);
      return;
    }
    // The kernels' conversion ({@link #F16_MASK}), a block at a time: the same floats as
    // Float.float16ToFloat through halfSlot, which took ~1.2 ns per scale (12% of a 16-row GEMM
    // call on 2048x2048, perf/RESULTS.md session 9).
    for (int b = 0; b < nb; b++) {
      IntVector hv = ShortVector.fromArray(S, halfScales, from + b * PANEL).reinterpretAsInts();
      int to = at + b * PANEL;
      hv.lanewise(VectorOperators.LSHL, 16)
          .lanewise(VectorOperators.ASHR, 3)
          .and(F16_MASK)
          .reinterpretAsFloats()
          .mul(F16_SCALE)
          .intoArray(dst, to);
      hv.lanewise(VectorOperators.ASHR, 3)
          .and(F16_MASK)
          .reinterpretAsFloats()
          .mul(F16_SCALE)
          .intoArray(dst, to + F.length());
    }
  }

  /** Number of rows (output features). */
  public final int rows() {
    return rows;
  }

  /** Number of columns (input features). */
  public final int cols() {
    return cols;
  }

  /** Number of panels, {@code ceil(rows / PANEL)}: the unit of work splitting. */
  public final int panels() {
    return panels;
  }

  /** Bytes held: packed codes and scales (2 bytes each as F16, else 4). */
  public final long storageBytes() {
    return codes.byteSize() + (halfScales != null ? 2L * halfScales.length : 4L * scales.length);
  }

  /**
   * Input rows from which {@link #matmul} takes the cache-blocked GEMM ({@link #matmulTiled})
   * instead of the per-panel row passes ({@link #matmulByPanel}). Measured on 2048x2048
   * (perf/RESULTS.md, "CPU prefill GEMM"): the GEMM is 1.4-1.5x ahead at 8 rows on both layouts and
   * about even at 4, where decoding its weight tiles costs about what it saves; below that
   * (single-stream decode) the per-panel kernels, which decode nothing, stay.
   */
  public static final int TILED_MIN_ROWS = 8;

  /**
   * Narrower matrices (fewer input columns) take the GEMM only from more rows: {@link
   * #TILED_MID_MIN_ROWS} from {@link #TILED_MID_COLS} columns, {@link #TILED_NARROW_MIN_ROWS}
   * below. Measured with {@code bench batch} and {@code bench prefill}, one script, the old and new
   * engine jars alternated (perf/RESULTS.md, "CPU prefill GEMM"): on the bundled model (256- and
   * 768-wide matrices, 8 and 24 blocks) the GEMM made decode of 16-64 sequences 4-15% slower (a
   * call's tiles have too little work to pay for their decode and scratch) and a 256-token prefill
   * 9% faster; on the Llama-3.2-1B shape (2,048 and 8,192 wide) 16 sequences decode 1.5x faster.
   */
  public static final int TILED_MIN_COLS = 1024;

  /**
   * Input rows from which matrices narrower than {@link #TILED_MID_COLS} take the GEMM (the bundled
   * model's 256-wide ones: decode, not prefill, stays on the row passes).
   */
  public static final int TILED_NARROW_MIN_ROWS = 128;

  /**
   * Matrices from this many columns up to {@link #TILED_MIN_COLS} take the GEMM from {@link
   * #TILED_MID_MIN_ROWS} rows. Measured (perf/RESULTS.md, "CPU attention at long contexts", session
   * 10; old and new engine jars alternated in one JVM): at 16 sequences the SmolLM2-135M shape
   * (576-wide matrices) decodes 1.08-1.12x (Q4_0) and 1.18x (Q8_0) faster on the GEMM, the bundled
   * model's Q4_0 (768-wide down products) 1.02x at 16 and 1.00x at 64; at 8 sequences the GEMM lost
   * (0.98x SmolLM2, 0.90x bundled), so these matrices wait for 16 rows.
   */
  public static final int TILED_MID_COLS = 512;

  /** Input rows from which matrices of {@link #TILED_MID_COLS} columns or more take the GEMM. */
  public static final int TILED_MID_MIN_ROWS = 16;

  /**
   * Input rows from which nibble weights ({@link PackedQ4}) take the GEMM at all: below that their
   * per-panel path runs eight rows per pass over the packed nibbles ({@link NibbleRows8}), which
   * decodes nothing. Measured one thread, bitwise-equal results, the two paths alternated in one
   * JVM (perf/RESULTS.md, issue 18 session 12): the eight-row pass took 0.65-0.79 of the GEMM's
   * time at 8 rows, 0.79-0.93 at 16 (576- to 8192-wide SmolLM2 and Llama-3.2-1B shapes), 0.97-1.01
   * at 24, and 0.98-1.09 at 32, where the GEMM's once-per-call tile decode is spread over enough
   * rows.
   */
  public static final int NIBBLE_TILED_MIN_ROWS = 32;

  /**
   * Input rows from which 8-bit codes ({@link PackedQ8}) take the GEMM at all: below that their
   * per-panel path runs eight rows per pass, each column's bytes converted to floats in registers
   * ({@link ByteRows8}). Measured as {@link #NIBBLE_TILED_MIN_ROWS}: 0.66-0.67 of the GEMM's time
   * at 8 rows, 0.80-0.87 at 16, 0.89-0.93 at 24, 0.95-0.97 at 32 and 1.01-1.02 at 64.
   */
  public static final int BYTE_TILED_MIN_ROWS = 64;

  /**
   * The column tiers alone: whether {@code batch} input rows of {@code cols} columns are enough for
   * the GEMM before a layout's own eight-row pass is considered ({@link #takesTiled(int)}).
   */
  public static boolean takesTiled(int batch, int cols) {
    int from =
        cols >= TILED_MIN_COLS
            ? TILED_MIN_ROWS
            : cols >= TILED_MID_COLS ? TILED_MID_MIN_ROWS : TILED_NARROW_MIN_ROWS;
    return batch >= from;
  }

  /**
   * Whether {@link #matmul} takes the GEMM for {@code batch} input rows on this layout: from {@link
   * #NIBBLE_TILED_MIN_ROWS} (nibbles) or {@link #BYTE_TILED_MIN_ROWS} (8-bit codes), and as {@link
   * #takesTiled(int, int)} says for the matrix's width.
   */
  public final boolean takesTiled(int batch) {
    int from = this instanceof PackedQ4 ? NIBBLE_TILED_MIN_ROWS : BYTE_TILED_MIN_ROWS;
    return batch >= from && takesTiled(batch, cols);
  }

  /**
   * {@code out[b*rows + r]} for every input row {@code b} of {@code x} and every row {@code r} of
   * panels {@code [panelStart, panelEnd)}; other elements of {@code out} are untouched, so disjoint
   * panel ranges may run concurrently. Few input rows (decode) take {@link #matmulByPanel}, many
   * ({@link #takesTiled}: prefill chunks, large batches) {@link #matmulTiled}; both give the same
   * bits.
   *
   * @throws IllegalArgumentException if {@code x} was quantized with another column count
   * @throws IndexOutOfBoundsException if {@code out} is too short or the range is outside {@code
   *     [0, panels]}
   */
  public final void matmul(QuantizedInput x, float[] out, int panelStart, int panelEnd) {
    if (takesTiled(x.batch())) {
      matmulTiled(x, out, panelStart, panelEnd);
    } else {
      matmulByPanel(x, out, panelStart, panelEnd);
    }
  }

  /**
   * {@link #matmul} by the per-panel kernels: each panel's weights are read once per pass and
   * applied to eight input rows per pass ({@link NibbleRows8}, {@link ByteRows8}), then to four,
   * two and one for the rows left over.
   */
  public final void matmulByPanel(QuantizedInput x, float[] out, int panelStart, int panelEnd) {
    int batch = check(x, out, panelStart, panelEnd);
    float[] c = new float[SCRATCH];
    int p0 = batch == 1 ? pairs(x, out, panelStart, panelEnd, c) : panelStart;
    boolean eights = batch >= NibbleRows8.ROWS && this instanceof PackedQ4;
    boolean byteEights = batch >= ByteRows8.ROWS && this instanceof PackedQ8;
    float[] acc8 =
        eights || byteEights
            ? new float[Math.max(NibbleRows8.ACC_LENGTH, ByteRows8.ACC_LENGTH)]
            : null;
    short[] sums8 = eights ? new short[2 * NibbleRows8.ROWS * PANEL] : null;
    float[] fsums8 = byteEights ? new float[ByteRows8.ROWS * PANEL] : null;
    if (byteEights) {
      x.ensureGemmCodes();
    }
    for (int p = p0; p < panelEnd; p++) {
      int valid = Math.min(PANEL, rows - p * PANEL);
      int b = 0;
      // Nibbles: eight input rows per pass, each extracted nibble serving all eight (NibbleRows8).
      for (; eights && b + NibbleRows8.ROWS <= batch; b += NibbleRows8.ROWS) {
        NibbleRows8.pass((PackedQ4) this, p, x, b, out, b * rows + p * PANEL, valid, acc8, sums8);
      }
      for (; byteEights && b + ByteRows8.ROWS <= batch; b += ByteRows8.ROWS) {
        ByteRows8.pass((PackedQ8) this, p, x, b, out, b * rows + p * PANEL, valid, acc8, fsums8);
      }
      // Four input rows per pass over the panel: its weights are loaded and widened once for
      // four rows, not once per row (the batched decode).
      for (; b + ROWS_PER_PASS <= batch; b += ROWS_PER_PASS) {
        panel4(p, x, b, out, b * rows + p * PANEL, valid, c);
      }
      // Two rows left: one pass for both.
      if (b + 2 <= batch) {
        panel2(p, x, b, out, b * rows + p * PANEL, valid, c);
        b += 2;
      }
      for (; b < batch; b++) {
        panel(p, x, b, out, b * rows + p * PANEL, valid, c);
      }
    }
  }

  /**
   * {@link #matmul} by the cache-blocked GEMM for many input rows: weight tiles are decoded once
   * per call and multiplied by every input row while in cache, in float FMAs for 8-bit codes
   * ({@link PackedGemm}) and in 16-bit integer lanes for nibbles ({@link NibbleGemm}).
   */
  public final void matmulTiled(QuantizedInput x, float[] out, int panelStart, int panelEnd) {
    check(x, out, panelStart, panelEnd);
    x.ensureGemmCodes();
    tiled(x, out, panelStart, panelEnd);
  }

  /** {@link #matmulTiled} after the checks: the GEMM for this layout. */
  abstract void tiled(QuantizedInput x, float[] out, int panelStart, int panelEnd);

  /** {@link #matmul} over all panels. */
  public final void matmul(QuantizedInput x, float[] out) {
    matmul(x, out, 0, panels);
  }

  /**
   * Scalar reference of {@link #matmul}, same contract and bitwise the same result (of either
   * kernel): per row and block an int sum of code products, then {@code acc = fma(sum, wScale *
   * xScale, acc)}.
   */
  public final void matmulReference(QuantizedInput x, float[] out, int panelStart, int panelEnd) {
    int batch = check(x, out, panelStart, panelEnd);
    // every panel here, none through a vector kernel (until session 20 one input row's panel
    // pairs went through pairs(), so the tests compared that kernel with itself)
    for (int p = panelStart; p < panelEnd; p++) {
      int valid = Math.min(PANEL, rows - p * PANEL);
      for (int i = 0; i < valid; i++) {
        for (int b = 0; b < batch; b++) {
          float acc = 0f;
          for (int k = 0; k < blocks; k++) {
            int sum = 0;
            for (int j = 0; j < BLOCK; j++) {
              sum += weight(p, i, k, j) * x.code(b, k * BLOCK + j);
            }
            acc = Math.fma((float) sum, scale(p, k, i) * x.scale(b, k), acc);
          }
          out[b * rows + p * PANEL + i] = acc;
        }
      }
    }
  }

  private int check(QuantizedInput x, float[] out, int panelStart, int panelEnd) {
    if (x.cols() != cols) {
      throw new IllegalArgumentException("input has " + x.cols() + " columns, matrix has " + cols);
    }
    Objects.checkFromToIndex(panelStart, panelEnd, panels);
    Objects.checkFromIndexSize(0, (long) x.batch() * rows, out.length);
    return x.batch();
  }

  /** Packs panels {@code [start, end)} of {@code src} into {@link #codes} and the scales. */
  abstract void fill(BlockSource src, int start, int end);

  /**
   * Blocks {@code [k0, k1)} of panel {@code p} as floats: the weight of panel row {@code i}, block
   * {@code k}, column {@code j} into {@code dst[at + ((k-k0)*32 + j)*PANEL + i]} (padding rows 0).
   */
  abstract void decodeTile(int p, int k0, int k1, float[] dst, int at);

  /** The integer weight of panel row {@code i}, block {@code k}, column {@code j} (scalar). */
  abstract int weight(int p, int i, int k, int j);

  /**
   * One panel against input row {@code b} of {@code x}: writes {@code valid} outputs at {@code
   * out[o ..)}. {@code c}: scratch of at least {@link #SCRATCH} floats, where the kernels keep
   * their float sums or stage a panel's outputs: float vectors that C2 does not keep in registers
   * (across a loop, or passed to a method it does not inline) are boxed, an allocation each time.
   */
  abstract void panel(int p, QuantizedInput x, int b, float[] out, int o, int valid, float[] c);

  /**
   * {@link #panel} for the four consecutive input rows from {@code b} (output stride {@link
   * #rows}); each row's result is bitwise what {@link #panel} gives it, since every row sees the
   * same operations in the same order.
   */
  abstract void panel4(int p, QuantizedInput x, int b, float[] out, int o, int valid, float[] c);

  /**
   * For one input row: the leading panels of {@code [panelStart, panelEnd)} that a layout takes two
   * at a time; returns the first panel left for {@link #panel}. None by default. {@code c}: scratch
   * as for {@link #panel}.
   */
  int pairs(QuantizedInput x, float[] out, int panelStart, int panelEnd, float[] c) {
    return panelStart;
  }

  /** {@link #panel4} for two consecutive input rows. */
  abstract void panel2(int p, QuantizedInput x, int b, float[] out, int o, int valid, float[] c);

  /** Loads {@link #PANEL} packed bytes at {@code offset} widened to 16-bit lanes. */
  static ShortVector loadWide(MemorySegment seg, long offset) {
    return (ShortVector)
        ByteVector.fromMemorySegment(BP, seg, offset, java.nio.ByteOrder.LITTLE_ENDIAN)
            .convertShape(jdk.incubator.vector.VectorOperators.B2S, S, 0);
  }
}
