package io.kvant.engine.tensor.packed;

import static io.kvant.engine.tensor.packed.PackedMatrix.BLOCK;
import static io.kvant.engine.tensor.packed.PackedMatrix.F;
import static io.kvant.engine.tensor.packed.PackedMatrix.I;
import static io.kvant.engine.tensor.packed.PackedMatrix.PANEL;
import static io.kvant.engine.tensor.packed.PackedMatrix.S;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.Arrays;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;

/**
 * Eight input rows against one panel of {@link PackedQ4} weights, the nibbles taken straight from
 * the packed runs: the per-panel pass of batched decode (16 sequences: two passes per panel).
 *
 * <p>Design note: {@link NibbleGemm} decodes each weight tile into 16-bit column pairs in memory
 * and then multiplies it by every input row; at 16 rows that decode (and the scales' conversion)
 * was about a fifth of its time, spent again on every decode step (perf/RESULTS.md, issue 18
 * session 12). Here a run of packed units is loaded once and shifted right by four between its four
 * nibbles in registers (the per-panel kernels' unmasked form, multiplied by {@link
 * QuantizedInput#nibbleCodes}), and each shifted vector serves eight rows: per column pair eight
 * activation broadcasts, sixteen 16-bit multiplies and adds, and two shifts, against {@link
 * NibbleGemm#MR}'s two tile loads, so nothing is decoded or stored per call. Sixteen 16-bit
 * accumulators stay in registers over a block; the eight rows' float accumulators (sixteen vectors,
 * too many to keep beside them) live in a small scratch array and get one {@code fma} per block, as
 * in the GEMM's epilogue.
 *
 * <p>Numerics: each lane's block sum of offset nibbles times codes is exact modulo {@code 2^16};
 * the even lanes start at {@code -8 * sum(x)}, so the even and odd lanes added modulo {@code 2^16}
 * are the block sum {@code sum(w * x)}, exact since it lies within {@code 32 * 8 * 127 < 2^15} of
 * zero; the accumulator then gets {@code fma(sum, wScale * xScale, acc)} per block in increasing
 * block order: bitwise {@link PackedMatrix#matmulReference}, as every other kernel.
 */
final class NibbleRows8 {
  /** Input rows per pass. */
  static final int ROWS = 8;

  /** Where in {@code acc} a block's decoded weight scales are parked (past the accumulators). */
  private static final int SCALES = ROWS * PANEL;

  /** Scratch floats {@code acc} must have: the accumulators, then one block's scales. */
  static final int ACC_LENGTH = (ROWS + 1) * PANEL;

  private static final int PAIRS = BLOCK / 2;

  /** Bytes of one run of packed units (one short vector). */
  private static final int RUN = 2 * PANEL;

  /** A shift by four as a count vector. */
  private static final ShortVector SHIFT4 = ShortVector.broadcast(S, (short) 4);

  private NibbleRows8() {}

  /**
   * Input rows {@code [b, b+8)} of {@code x} against panel {@code p} of {@code m}: writes {@code
   * valid} outputs per row at {@code out[o + r*m.rows ..)}. {@code acc} (at least {@link
   * #ACC_LENGTH}) and {@code sums} (at least {@code 16*PANEL}) are scratch.
   */
  static void pass(
      PackedQ4 m,
      int p,
      QuantizedInput x,
      int b,
      float[] out,
      int o,
      int valid,
      float[] acc,
      short[] sums) {
    int blocks = m.blocks;
    int half = m.cols / 2;
    int[] xp = x.nibbleCodes();
    MemorySegment codes = m.codes;
    long base = (long) p * blocks * PAIRS * PANEL;
    Arrays.fill(acc, 0, ROWS * PANEL, 0f);
    int[] xsum = x.blockSums();
    for (int k = 0; k < blocks; k++) {
      // Each row's accumulators start at minus its offset, 8 * sum(x) of the block, in the even
      // lanes (odd lanes 0): the even + odd lane sum is then the exact block sum (see accumulate).
      int so = b * blocks + k;
      ShortVector a00 = PackedQ4.offsets(xsum[so]);
      ShortVector a01 = a00;
      ShortVector a10 = PackedQ4.offsets(xsum[so + blocks]);
      ShortVector a11 = a10;
      ShortVector a20 = PackedQ4.offsets(xsum[so + 2 * blocks]);
      ShortVector a21 = a20;
      ShortVector a30 = PackedQ4.offsets(xsum[so + 3 * blocks]);
      ShortVector a31 = a30;
      ShortVector a40 = PackedQ4.offsets(xsum[so + 4 * blocks]);
      ShortVector a41 = a40;
      ShortVector a50 = PackedQ4.offsets(xsum[so + 5 * blocks]);
      ShortVector a51 = a50;
      ShortVector a60 = PackedQ4.offsets(xsum[so + 6 * blocks]);
      ShortVector a61 = a60;
      ShortVector a70 = PackedQ4.offsets(xsum[so + 7 * blocks]);
      ShortVector a71 = a70;
      long wo = base + (long) k * PAIRS * PANEL;
      int xk = b * half + k * PAIRS;
      // Column pair c = 4g + t: nibble t of the runs of group g (both halves of the panel). A
      // group's two runs are loaded once and shifted right by four after each pair (w >> 4t as t
      // shifts of four, by a constant count vector: C2 rematerializes a scalar count before every
      // shift, see PackedQ4.SHIFT4).
      for (int g = 0; g < 4; g++) {
        ShortVector n0 =
            ShortVector.fromMemorySegment(
                S, codes, wo + (long) (2 * g) * RUN, ByteOrder.LITTLE_ENDIAN);
        ShortVector n1 =
            ShortVector.fromMemorySegment(
                S, codes, wo + (long) (2 * g + 1) * RUN, ByteOrder.LITTLE_ENDIAN);
        for (int t = 0; t < 4; t++) {
          int xc = xk + 4 * g + t;
          ShortVector v = IntVector.broadcast(I, xp[xc]).reinterpretAsShorts();
          a00 = a00.add(n0.mul(v));
          a01 = a01.add(n1.mul(v));
          v = IntVector.broadcast(I, xp[xc + half]).reinterpretAsShorts();
          a10 = a10.add(n0.mul(v));
          a11 = a11.add(n1.mul(v));
          v = IntVector.broadcast(I, xp[xc + 2 * half]).reinterpretAsShorts();
          a20 = a20.add(n0.mul(v));
          a21 = a21.add(n1.mul(v));
          v = IntVector.broadcast(I, xp[xc + 3 * half]).reinterpretAsShorts();
          a30 = a30.add(n0.mul(v));
          a31 = a31.add(n1.mul(v));
          v = IntVector.broadcast(I, xp[xc + 4 * half]).reinterpretAsShorts();
          a40 = a40.add(n0.mul(v));
          a41 = a41.add(n1.mul(v));
          v = IntVector.broadcast(I, xp[xc + 5 * half]).reinterpretAsShorts();
          a50 = a50.add(n0.mul(v));
          a51 = a51.add(n1.mul(v));
          v = IntVector.broadcast(I, xp[xc + 6 * half]).reinterpretAsShorts();
          a60 = a60.add(n0.mul(v));
          a61 = a61.add(n1.mul(v));
          v = IntVector.broadcast(I, xp[xc + 7 * half]).reinterpretAsShorts();
          a70 = a70.add(n0.mul(v));
          a71 = a71.add(n1.mul(v));

          n0 = n0.lanewise(VectorOperators.LSHR, SHIFT4);
          n1 = n1.lanewise(VectorOperators.LSHR, SHIFT4);
        }
      }
      a00.intoArray(sums, 0);
      a01.intoArray(sums, PANEL);
      a10.intoArray(sums, 2 * PANEL);
      a11.intoArray(sums, 3 * PANEL);
      a20.intoArray(sums, 4 * PANEL);
      a21.intoArray(sums, 5 * PANEL);
      a30.intoArray(sums, 6 * PANEL);
      a31.intoArray(sums, 7 * PANEL);
      a40.intoArray(sums, 8 * PANEL);
      a41.intoArray(sums, 9 * PANEL);
      a50.intoArray(sums, 10 * PANEL);
      a51.intoArray(sums, 11 * PANEL);
      a60.intoArray(sums, 12 * PANEL);
      a61.intoArray(sums, 13 * PANEL);
      a70.intoArray(sums, 14 * PANEL);
      a71.intoArray(sums, 15 * PANEL);
      accumulate(m, p, k, x, b, sums, acc);
    }
    for (int r = 0; r < ROWS; r++) {
      System.arraycopy(acc, r * PANEL, out, o + r * m.rows, valid);
    }
  }

  /**
   * {@code acc += sum * (wScale * xScale)} for the eight rows of block {@code k}: row {@code r}'s
   * two 16-bit accumulators at {@code sums[2r*PANEL..)} hold per output an even- and an odd-column
   * sum in adjacent lanes, the even one less the block's offset {@link PackedQ4#offsets}. The exact
   * block sum {@code sum(w * x)}, with {@code |sum| <= 32 * 8 * 127 < 2^15}, is their sum modulo
   * {@code 2^16} read as a signed 16-bit value: an int lane {@code V = odd * 2^16 + (even mod
   * 2^16)} gives it as {@code (V + (V << 16)) >> 16} (arithmetic shift), three operations where
   * sign-extending each half first took five. Apart from the micro-kernel because C2 stops inlining
   * Vector API calls past a node budget, and a vector crossing a call that was not inlined is
   * boxed.
   */
  private static void accumulate(
      PackedQ4 m, int p, int k, QuantizedInput x, int b, short[] sums, float[] acc) {
    int blocks = m.blocks;
    int h = F.length();
    // The block's weight scales through the matrix's own decode, parked past the accumulators.
    m.decodeScales(p, k, 1, acc, SCALES);
    FloatVector s0 = FloatVector.fromArray(F, acc, SCALES);
    FloatVector s1 = FloatVector.fromArray(F, acc, SCALES + h);
    float[] xs = x.scales();
    for (int r = 0; r < ROWS; r++) {
      float d = xs[(b + r) * blocks + k];
      int a = r * PANEL;
      IntVector v0 = ShortVector.fromArray(S, sums, 2 * r * PANEL).reinterpretAsInts();
      IntVector v1 = ShortVector.fromArray(S, sums, (2 * r + 1) * PANEL).reinterpretAsInts();
      IntVector i0 =
          v0.add(v0.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
      IntVector i1 =
          v1.add(v1.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
      ((FloatVector) i0.convert(VectorOperators.I2F, 0))
          .fma(s0.mul(d), FloatVector.fromArray(F, acc, a))
          .intoArray(acc, a);
      ((FloatVector) i1.convert(VectorOperators.I2F, 0))
          .fma(s1.mul(d), FloatVector.fromArray(F, acc, a + h))
          .intoArray(acc, a + h);
    }
  }
}
