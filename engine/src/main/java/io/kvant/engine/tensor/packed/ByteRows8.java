package io.kvant.engine.tensor.packed;

import static io.kvant.engine.tensor.packed.PackedMatrix.BLOCK;
import static io.kvant.engine.tensor.packed.PackedMatrix.F;
import static io.kvant.engine.tensor.packed.PackedMatrix.PANEL;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.Arrays;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * Eight input rows against one panel of {@link PackedQ8} weights, each column's bytes converted to
 * floats in registers: {@link PackedGemm}'s micro-kernel without its tile decode to memory.
 *
 * <p>Numerics as in {@link PackedGemm}: products of integer codes summed over a block stay below
 * {@code 2^24}, so the float block sums are the exact integer sums, and each row's accumulator gets
 * {@code fma(sum, wScale * xScale, acc)} per block in increasing block order: bitwise {@link
 * PackedMatrix#matmulReference}.
 */
final class ByteRows8 {
  /** Input rows per pass. */
  static final int ROWS = 8;

  /** Where in {@code acc} a block's decoded weight scales are parked (past the accumulators). */
  private static final int SCALES = ROWS * PANEL;

  /** Scratch floats {@code acc} must have: the accumulators, then one block's scales. */
  static final int ACC_LENGTH = (ROWS + 1) * PANEL;

  /** Bytes of one float vector's lanes. */
  private static final VectorSpecies<Byte> BQ =
      VectorSpecies.of(byte.class, VectorShape.forBitSize(F.vectorBitSize() / 4));

  private ByteRows8() {}

  /**
   * Input rows {@code [b, b+8)} of {@code x} (its {@link QuantizedInput#floatCodes} ready) against
   * panel {@code p} of {@code m}: writes {@code valid} outputs per row at {@code out[o + r*m.rows
   * ..)}. {@code acc} (at least {@link #ACC_LENGTH}) and {@code sums} (at least {@code 8*PANEL})
   * are scratch.
   */
  static void pass(
      PackedQ8 m,
      int p,
      QuantizedInput x,
      int b,
      float[] out,
      int o,
      int valid,
      float[] acc,
      float[] sums) {
    int blocks = m.blocks;
    int cols = m.cols;
    int h = F.length();
    float[] xf = x.floatCodes();
    MemorySegment codes = m.codes;
    long base = (long) p * blocks * BLOCK * PANEL;
    Arrays.fill(acc, 0, ROWS * PANEL, 0f);
    for (int k = 0; k < blocks; k++) {
      FloatVector s00 = FloatVector.zero(F);
      FloatVector s01 = FloatVector.zero(F);
      FloatVector s10 = FloatVector.zero(F);
      FloatVector s11 = FloatVector.zero(F);
      FloatVector s20 = FloatVector.zero(F);
      FloatVector s21 = FloatVector.zero(F);
      FloatVector s30 = FloatVector.zero(F);
      FloatVector s31 = FloatVector.zero(F);
      FloatVector s40 = FloatVector.zero(F);
      FloatVector s41 = FloatVector.zero(F);
      FloatVector s50 = FloatVector.zero(F);
      FloatVector s51 = FloatVector.zero(F);
      FloatVector s60 = FloatVector.zero(F);
      FloatVector s61 = FloatVector.zero(F);
      FloatVector s70 = FloatVector.zero(F);
      FloatVector s71 = FloatVector.zero(F);
      long wo = base + (long) k * BLOCK * PANEL;
      int xb = b * cols + k * BLOCK;
      for (int j = 0; j < BLOCK; j++) {
        long wj = wo + (long) j * PANEL;
        FloatVector w0 =
            (FloatVector)
                ByteVector.fromMemorySegment(BQ, codes, wj, ByteOrder.LITTLE_ENDIAN)
                    .convertShape(VectorOperators.B2F, F, 0);
        FloatVector w1 =
            (FloatVector)
                ByteVector.fromMemorySegment(BQ, codes, wj + h, ByteOrder.LITTLE_ENDIAN)
                    .convertShape(VectorOperators.B2F, F, 0);
        int xj = xb + j;
        FloatVector v = FloatVector.broadcast(F, xf[xj]);
        s00 = w0.fma(v, s00);
        s01 = w1.fma(v, s01);
        v = FloatVector.broadcast(F, xf[xj + cols]);
        s10 = w0.fma(v, s10);
        s11 = w1.fma(v, s11);
        v = FloatVector.broadcast(F, xf[xj + 2 * cols]);
        s20 = w0.fma(v, s20);
        s21 = w1.fma(v, s21);
        v = FloatVector.broadcast(F, xf[xj + 3 * cols]);
        s30 = w0.fma(v, s30);
        s31 = w1.fma(v, s31);
        v = FloatVector.broadcast(F, xf[xj + 4 * cols]);
        s40 = w0.fma(v, s40);
        s41 = w1.fma(v, s41);
        v = FloatVector.broadcast(F, xf[xj + 5 * cols]);
        s50 = w0.fma(v, s50);
        s51 = w1.fma(v, s51);
        v = FloatVector.broadcast(F, xf[xj + 6 * cols]);
        s60 = w0.fma(v, s60);
        s61 = w1.fma(v, s61);
        v = FloatVector.broadcast(F, xf[xj + 7 * cols]);
        s70 = w0.fma(v, s70);
        s71 = w1.fma(v, s71);
      }
      s00.intoArray(sums, 0);
      s01.intoArray(sums, h);
      s10.intoArray(sums, PANEL);
      s11.intoArray(sums, PANEL + h);
      s20.intoArray(sums, 2 * PANEL);
      s21.intoArray(sums, 2 * PANEL + h);
      s30.intoArray(sums, 3 * PANEL);
      s31.intoArray(sums, 3 * PANEL + h);
      s40.intoArray(sums, 4 * PANEL);
      s41.intoArray(sums, 4 * PANEL + h);
      s50.intoArray(sums, 5 * PANEL);
      s51.intoArray(sums, 5 * PANEL + h);
      s60.intoArray(sums, 6 * PANEL);
      s61.intoArray(sums, 6 * PANEL + h);
      s70.intoArray(sums, 7 * PANEL);
      s71.intoArray(sums, 7 * PANEL + h);
      accumulate(m, p, k, x, b, sums, acc);
    }
    for (int r = 0; r < ROWS; r++) {
      System.arraycopy(acc, r * PANEL, out, o + r * m.rows, valid);
    }
  }

  /**
   * {@code acc += sum * (wScale * xScale)} for the eight rows of block {@code k}, one fma per lane.
   * Apart from the micro-kernel because C2 stops inlining Vector API calls past a node budget, and
   * a vector crossing a call that was not inlined is boxed.
   */
  private static void accumulate(
      PackedQ8 m, int p, int k, QuantizedInput x, int b, float[] sums, float[] acc) {
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
      FloatVector.fromArray(F, sums, a)
          .fma(s0.mul(d), FloatVector.fromArray(F, acc, a))
          .intoArray(acc, a);
      FloatVector.fromArray(F, sums, a + h)
          .fma(s1.mul(d), FloatVector.fromArray(F, acc, a + h))
          .intoArray(acc, a + h);
    }
  }
}
