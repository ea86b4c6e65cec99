package io.kvant.engine.tensor.packed;

import java.util.Objects;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * Activations quantized to int8 for the integer matmul kernels: each input row is cut into blocks
 * of {@link #BLOCK} columns, and each block keeps a float scale {@code d = max|x| / 127} and codes
 * {@code q = round(x / d)} in {@code [-127, 127]} (rounded half away from zero), so {@code x ~= d *
 * q}.
 *
 * <p>Codes are stored already widened to {@code short}: the kernels multiply them in 16-bit lanes,
 * and keeping them wide saves a conversion per use (a row of activations is reused by every weight
 * row). {@code -128} is never produced, which is what lets a kernel add two int8 x int8 products in
 * a 16-bit lane without overflow ({@code 2 * 128 * 127 < 32768}).
 *
 * <p>Each quantization also writes the codes as pairs of 16-bit codes in an int ({@link
 * #pairCodes}: broadcast as an int, one load, a pair lands in every even/odd lane pair, which the
 * nibble kernels of {@link PackedQ4} and {@link NibbleGemm} multiply by two columns at once), each
 * code twice in an int ({@link #splatCodes}, for {@link PackedQ8}'s broadcasts) and each block's
 * code sum ({@link #blockSums}: {@link PackedQ4} multiplies offset nibbles {@code w+8} and takes
 * {@code 8 * sum} back off), and the pairs again as differences for the per-panel nibble kernels
 * ({@link #nibbleCodes}: they spare the kernels a mask per nibble). For the 8-bit GEMM the codes
 * are also made available as floats ({@link #floatCodes}): {@link PackedGemm} multiplies in float
 * lanes, exactly (integer products and block sums stay below 2^24), and broadcasts an activation
 * straight from memory, which a short would need three instructions for. Those are derived from the
 * codes once per quantization, on the first {@link #ensureGemmCodes} (the GEMM's entry), so decode
 * steps, which never take the GEMM, do not pay for them.
 *
 * <p>Not thread-safe while being filled; read-only (and safe to share) afterwards. Buffers grow and
 * are reused across calls.
 */
public final class QuantizedInput {
  /** Columns per quantization block, the same as the weights' blocks. */
  public static final int BLOCK = 32;

  private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
  private static final VectorSpecies<Integer> I = IntVector.SPECIES_PREFERRED;
  private static final VectorSpecies<Short> S = ShortVector.SPECIES_PREFERRED;

  /** The float sign bit, and 0.5f's bits: {@code Math.copySign(0.5f, t)} by lanes. */
  private static final int SIGN = 0x80000000;

  private static final int HALF = Float.floatToRawIntBits(0.5f);

  /** Per int lane (a pair of columns): -1 except at the first pair of each group of four. */
  private static final IntVector AFTER_FIRST = IntVector.fromArray(I, afterFirst(I.length()), 0);

  /** Int lane {@code i} takes lane {@code i - 1} (lane 0 the last one: masked off by the above). */
  private static final VectorShuffle<Integer> PREVIOUS =
      VectorShuffle.fromOp(I, i -> (i + I.length() - 1) % I.length());

  /** Short lane {@code i} takes lane {@code i - S.length()/2} (modulo the length). */
  private static final VectorShuffle<Short> UP_HALF =
      VectorShuffle.fromOp(S, i -> (i + S.length() / 2) % S.length());

  /** The high half of a short vector's lanes. */
  private static final VectorMask<Short> HIGH_HALF =
      VectorMask.fromLong(S, -1L << (S.length() / 2));

  private static int[] afterFirst(int n) {
    int[] m = new int[n];
    for (int i = 0; i < n; i++) {
      m[i] = i % 4 == 0 ? 0 : -1;
    }
    return m;
  }

  private short[] codes = new short[0];
  private float[] floatCodes = new float[0];
  private int[] pairCodes = new int[0];
  private int[] splatCodes = new int[0];
  private int[] nibbleCodes = new int[0];
  private float[] scales = new float[0];
  private int[] blockSums = new int[0];
  private int batch;
  private int cols;
  // whether floatCodes holds this quantization's codes (written under the lock, read
  // without it by the threads of one product)
  private volatile boolean gemmCodes;

  /**
   * Quantizes rows {@code [0, batch)} of {@code x} (row {@code b} at {@code x[b*cols ..)}).
   *
   * @throws IllegalArgumentException if {@code cols} is not a positive multiple of {@link #BLOCK}
   *     or {@code batch < 1}
   * @throws IndexOutOfBoundsException if {@code x} is shorter than {@code batch * cols}
   */
  public void quantize(float[] x, int batch, int cols) {
    quantize(x, batch, cols, false);
  }

  /**
   * {@link #quantize} by the scalar reference of its block kernel: the same codes, scales, pairs,
   * nibble codes and block sums, bit for bit (the tests hold the vector kernel to this).
   */
  void quantizeReference(float[] x, int batch, int cols) {
    quantize(x, batch, cols, true);
  }

  private void quantize(float[] x, int batch, int cols, boolean reference) {
    Objects.checkFromIndexSize(0, (long) checkedSize(batch, cols), x.length);
    begin(batch, cols);
    if (reference) {
      for (int blk = 0; blk < batch * cols / BLOCK; blk++) {
        quantizeBlockReference(x, blk * BLOCK, blk * BLOCK, blk);
      }
    } else {
      quantizeBlocks(x, 0, batch * cols / BLOCK);
    }
  }

  /**
   * Starts a quantization of {@code batch} rows of {@code cols} that {@link #quantizeBlocks} then
   * fills block by block: the form for callers that produce the rows in parallel and quantize each
   * where it was made (the forward pass's per-row stages). Until every block is filled the codes
   * are undefined.
   *
   * @throws IllegalArgumentException as {@link #quantize}
   */
  public void begin(int batch, int cols) {
    int n = checkedSize(batch, cols);
    if (codes.length < n) {
      codes = new short[n];
      pairCodes = new int[n / 2];
      splatCodes = new int[n];
      nibbleCodes = new int[n / 2];
      scales = new float[n / BLOCK];
      blockSums = new int[n / BLOCK];
    }
    this.batch = batch;
    this.cols = cols;
    gemmCodes = false;
  }

  /**
   * Quantizes blocks {@code [from, to)} of the rows {@link #begin} announced, block {@code b} being
   * {@code x[b*BLOCK .. (b+1)*BLOCK)} (row {@code r} is blocks {@code [r*cols/BLOCK,
   * (r+1)*cols/BLOCK)}); the codes and scales are those {@link #quantize} gives, bit for bit. Calls
   * on disjoint block ranges may run on different threads at once: each block writes only its own
   * codes, pairs, scale and sum. The readers must be ordered after every such call (the compute
   * pool's join does that).
   *
   * @throws IndexOutOfBoundsException if the range is outside the announced rows or {@code x}
   */
  public void quantizeBlocks(float[] x, int from, int to) {
    Objects.checkFromToIndex(from, to, batch * cols / BLOCK);
    Objects.checkFromToIndex(from * BLOCK, to * BLOCK, x.length);
    for (int blk = from; blk < to; blk++) {
      quantizeBlock(x, blk * BLOCK, blk * BLOCK, blk);
    }
  }

  private static int checkedSize(int batch, int cols) {
    if (cols <= 0 || cols % BLOCK != 0) {
      throw new IllegalArgumentException("cols must be a positive multiple of 32, got " + cols);
    }
    if (batch < 1) {
      throw new IllegalArgumentException("batch must be >= 1, got " + batch);
    }
    return Math.multiplyExact(batch, cols);
  }

  /**
   * Block {@code blk}: {@code x[from .. from+32)} into codes at {@code to} and its scale, in vector
   * lanes: {@link #quantizeBlockReference}'s operations lane by lane (the same float multiply, the
   * sign of 0.5 copied by bits as {@code Math.copySign} does, the cast's truncation, the clamp),
   * the maximum and the code sum as lane reductions, which are exact in any order. So the same
   * bits. Why: the scalar loop was 8-15% of a 16-sequence decode step, on the caller while the
   * other threads wait (perf/RESULTS.md, issue 18 session 12).
   */
  private void quantizeBlock(float[] x, int from, int to, int blk) {
    if (BLOCK % S.length() != 0 || S.length() != 2 * F.length()) {
      quantizeBlockReference(x, from, to, blk);
      return;
    }
    FloatVector m = FloatVector.zero(F);
    for (int j = 0; j < BLOCK; j += F.length()) {
      m = m.max(FloatVector.fromArray(F, x, from + j).abs());
    }
    float amax = m.reduceLanes(VectorOperators.MAX);
    float d = amax / 127f;
    float inv = d == 0f ? 0f : 1f / d;
    scales[blk] = d;
    IntVector sum = IntVector.zero(I);
    for (int j = 0; j < BLOCK; j += S.length()) {
      FloatVector t0 = FloatVector.fromArray(F, x, from + j).mul(inv);
      FloatVector t1 = FloatVector.fromArray(F, x, from + j + F.length()).mul(inv);
      FloatVector h0 = t0.reinterpretAsInts().and(SIGN).or(HALF).reinterpretAsFloats();
      FloatVector h1 = t1.reinterpretAsInts().and(SIGN).or(HALF).reinterpretAsFloats();
      IntVector q0 = ((IntVector) t0.add(h0).convert(VectorOperators.F2I, 0)).max(-127).min(127);
      IntVector q1 = ((IntVector) t1.add(h1).convert(VectorOperators.F2I, 0)).max(-127).min(127);
      sum = sum.add(q0).add(q1);
      q0.and(0xFFFF).or(q0.lanewise(VectorOperators.LSHL, 16)).intoArray(splatCodes, to + j);
      q1.and(0xFFFF)
          .or(q1.lanewise(VectorOperators.LSHL, 16))
          .intoArray(splatCodes, to + j + F.length());
      // Both halves narrowed into the low lanes, the second moved up by a constant shuffle. The
      // Vector API's own forms (a part -1 conversion, unslice) build a shuffle per call; in one
      // profile those frames had most of this kernel's samples (a probe: 7 -> 6 us for 16 rows of
      // 576; end to end even).
      ShortVector q =
          ((ShortVector) q0.convertShape(VectorOperators.I2S, S, 0))
              .blend(
                  ((ShortVector) q1.convertShape(VectorOperators.I2S, S, 0)).rearrange(UP_HALF),
                  HIGH_HALF);
      q.intoArray(codes, to + j);
      IntVector pairs = q.reinterpretAsInts();
      pairs.intoArray(pairCodes, (to + j) / 2);
      // each pair less 16 times the pair before it in its group of four (none for the first)
      IntVector before = pairs.rearrange(PREVIOUS).and(AFTER_FIRST);
      q.sub(before.reinterpretAsShorts().lanewise(VectorOperators.LSHL, 4))
          .reinterpretAsInts()
          .intoArray(nibbleCodes, (to + j) / 2);
    }
    blockSums[blk] = sum.reduceLanes(VectorOperators.ADD);
  }

  /** {@link #quantizeBlock}'s scalar reference. */
  private void quantizeBlockReference(float[] x, int from, int to, int blk) {
    float amax = 0f;
    for (int j = 0; j < BLOCK; j++) {
      amax = Math.max(amax, Math.abs(x[from + j]));
    }
    float d = amax / 127f;
    float inv = d == 0f ? 0f : 1f / d;
    scales[blk] = d;
    int sum = 0;
    int p0 = 0;
    int p1 = 0;
    for (int j = 0; j < BLOCK; j += 2) {
      short q0 = (short) code(x[from + j] * inv);
      short q1 = (short) code(x[from + j + 1] * inv);
      codes[to + j] = q0;
      codes[to + j + 1] = q1;
      pairCodes[(to + j) / 2] = (q0 & 0xFFFF) | (q1 << 16);
      splatCodes[to + j] = (q0 & 0xFFFF) | (q0 << 16);
      splatCodes[to + j + 1] = (q1 & 0xFFFF) | (q1 << 16);
      // the first pair of each group of eight columns as it is, the others less 16 times the
      // pair before (mod 2^16, as the kernels' 16-bit lanes compute)
      int y0 = j % 8 == 0 ? q0 : q0 - 16 * p0;
      int y1 = j % 8 == 0 ? q1 : q1 - 16 * p1;
      nibbleCodes[(to + j) / 2] = (y0 & 0xFFFF) | (y1 << 16);
      p0 = q0;
      p1 = q1;
      sum += q0 + q1;
    }
    blockSums[blk] = sum;
  }

  /**
   * Makes {@link #floatCodes} hold this quantization's codes, once per quantization: the first
   * caller derives them, later ones (the other threads of the same product) find them ready. Safe
   * to call from several threads after the quantization.
   */
  void ensureGemmCodes() {
    if (gemmCodes) {
      return;
    }
    synchronized (this) {
      if (gemmCodes) {
        return;
      }
      int n = batch * cols;
      if (floatCodes.length < n) {
        floatCodes = new float[codes.length];
      }
      for (int i = 0; i < n; i++) {
        floatCodes[i] = codes[i];
      }
      gemmCodes = true;
    }
  }

  /** {@code v} rounded half away from zero and clamped to {@code [-127, 127]}. */
  static int code(float v) {
    int q = (int) (v + Math.copySign(0.5f, v));
    return Math.max(-127, Math.min(127, q));
  }

  /** Rows quantized by the last {@link #quantize}. */
  public int batch() {
    return batch;
  }

  /** Columns per row of the last {@link #quantize}. */
  public int cols() {
    return cols;
  }

  /** Code of row {@code b}, column {@code c}. */
  public int code(int b, int c) {
    Objects.checkIndex(b, batch);
    Objects.checkIndex(c, cols);
    return codes[b * cols + c];
  }

  /** Scale of row {@code b}, block {@code k}. */
  public float scale(int b, int k) {
    Objects.checkIndex(b, batch);
    Objects.checkIndex(k, cols / BLOCK);
    return scales[b * (cols / BLOCK) + k];
  }

  short[] codes() {
    return codes;
  }

  /** {@link #codes()} as floats, same layout; valid after {@link #ensureGemmCodes}. */
  float[] floatCodes() {
    return floatCodes;
  }

  /**
   * Columns {@code 2c} and {@code 2c+1} of {@link #codes()} as one int, the first in the low 16
   * bits: broadcast as an int and viewed as shorts, a pair lands in every even/odd lane pair.
   */
  int[] pairCodes() {
    return pairCodes;
  }

  /**
   * Each code of {@link #codes()} in both 16-bit halves of an int, same indexing: broadcast as an
   * int (a load, where a short broadcast is a shuffle on x86), every 16-bit lane holds the code.
   * {@link PackedQ8}'s kernels multiply a column of 8-bit weights by it.
   */
  int[] splatCodes() {
    return splatCodes;
  }

  /**
   * {@link #pairCodes()} prepared for {@link PackedQ4}'s per-panel kernels, which multiply a 16-bit
   * unit of four nibbles shifted right by {@code 4t} without masking off the nibbles above: in each
   * group of eight columns (pairs {@code t = 0..3}), pair 0 as it is and pair {@code t > 0} less 16
   * times pair {@code t-1}, each 16-bit half modulo {@code 2^16}. With {@code q_t = u >>> 4t} the
   * nibbles are {@code n_t = q_t - 16 q_(t+1)} ({@code q_4 = 0}), so {@code sum_t q_t y_t = sum_t
   * n_t x_t}: the same integer, modulo {@code 2^16} in a lane, and exact there, since a block's
   * true sum per lane is below {@code 16 * 15 * 127 < 32768} in magnitude.
   */
  int[] nibbleCodes() {
    return nibbleCodes;
  }

  float[] scales() {
    return scales;
  }

  /** Sum of each block's codes, same indexing as {@link #scales()}. */
  int[] blockSums() {
    return blockSums;
  }
}
