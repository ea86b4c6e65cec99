package io.kvant.engine.tensor.packed;

import static io.kvant.engine.tensor.packed.PackedMatrix.BLOCK;
import static io.kvant.engine.tensor.packed.PackedMatrix.F;
import static io.kvant.engine.tensor.packed.PackedMatrix.I;
import static io.kvant.engine.tensor.packed.PackedMatrix.PANEL;
import static io.kvant.engine.tensor.packed.PackedMatrix.S;

import java.util.Arrays;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;

/**
 * The many-row product of nibble weights ({@link PackedQ4}: Q4_0, symmetric I4): the cache-blocked
 * GEMM of {@link PackedGemm}, with 16-bit integer products instead of float FMAs.
 *
 * <p>Design note: a 16-bit multiply covers twice the lanes of a float FMA, and nibble products are
 * small enough ({@code |w*x| <= 8*127}) to add a whole block's worth in 16 bits ({@code 16 * 1016 <
 * 32768} per lane). Weights are decoded once per call into column pairs ({@link
 * PackedQ4#decodePairTile}: lane {@code 2i} the row's even column, lane {@code 2i+1} its odd one),
 * and an activation pair is one int broadcast (a load, no shuffle), so per column pair and input
 * row the kernel does one multiply and one add per 16 outputs, 32 multiply-adds each. At the end of
 * a block the even and odd lanes are added as ints (shifts on the int view), converted to float and
 * scaled as everywhere else. Tiling as in {@link PackedGemm}: {@link #KC} blocks of {@link #GROUP}
 * panels per tile, {@link #MR} input rows times one panel per micro-kernel pass.
 *
 * <p>Numerics: the block sums are the exact integer sums, so results are bitwise those of {@link
 * PackedMatrix#matmulReference}.
 *
 * <p>Stateless; scratch (as in {@link PackedGemm}) is allocated per call.
 */
final class NibbleGemm {
  /** Blocks of 32 columns per chunk: a panel's decoded tile is 8 KiB with AVX-512. */
  static final int KC = 4;

  /** Panels decoded per chunk. */
  static final int GROUP = 4;

  /** Input rows per micro-kernel pass. */
  static final int MR = 8;

  private static final int PAIRS = BLOCK / 2;

  private NibbleGemm() {}

  /**
   * {@code out[b*rows + r]} for every input row {@code b} of {@code x} and every row {@code r} of
   * panels {@code [panelStart, panelEnd)} of {@code m}; other elements untouched. Arguments are
   * checked by the caller.
   */
  static void multiply(PackedQ4 m, QuantizedInput x, float[] out, int panelStart, int panelEnd) {
    int batch = x.batch();
    int half = m.cols / 2;
    int blocks = m.blocks;
    int[] xp = x.pairCodes();
    float[] xs = x.scales();
    int tileSize = KC * PAIRS * 2 * I.length();
    int[] tile = new int[GROUP * tileSize];
    float[] acc = new float[GROUP * batch * PANEL];
    short[] sums = new short[MR * 2 * PANEL];
    // The tile's weight scales as floats, KC blocks of PANEL per panel.
    float[] wsc = new float[GROUP * KC * PANEL];
    for (int g = panelStart; g < panelEnd; g += GROUP) {
      int np = Math.min(GROUP, panelEnd - g);
      Arrays.fill(acc, 0, np * batch * PANEL, 0f);
      for (int k0 = 0; k0 < blocks; k0 += KC) {
        int nb = Math.min(KC, blocks - k0);
        for (int q = 0; q < np; q++) {
          m.decodePairTile(g + q, k0, k0 + nb, tile, q * tileSize);
          m.decodeScales(g + q, k0, nb, wsc, q * KC * PANEL);
        }
        int b = 0;
        while (b < batch) {
          // Eight rows per pass, then four, then one at a time (the rows left over).
          int n = batch - b >= MR ? MR : batch - b >= 4 ? 4 : 1;
          for (int q = 0; q < np; q++) {
            int t0 = q * tileSize;
            int xo = b * half + k0 * PAIRS;
            int so = b * blocks + k0;
            int ws = q * KC * PANEL;
            int ao = (q * batch + b) * PANEL;
            if (n == MR) {
              rows8(tile, t0, xp, xo, half, xs, so, blocks, wsc, ws, acc, ao, sums, nb);
            } else if (n == 4) {
              rows4(tile, t0, xp, xo, half, xs, so, blocks, wsc, ws, acc, ao, sums, nb);
            } else {
              row1(tile, t0, xp, xo, half, xs, so, blocks, wsc, ws, acc, ao, sums, nb);
            }
          }
          b += n;
        }
      }
      PackedGemm.storeGroup(m, acc, g, np, batch, out);
    }
  }

  /**
   * {@link #MR} input rows against one panel's tile, {@code nb} blocks: the tile at {@code
   * tile[t0..)}, the first row's pair codes at {@code xp[xo..)} (row stride {@code half}), its
   * block scales at {@code xs[so..)} (row stride {@code blocks}), weight scales at {@code ws[wo..)}
   * (block stride {@code PANEL}), accumulators at {@code acc[ao..)} (row stride {@code PANEL}).
   */
  private static void rows8(
      int[] tile,
      int t0,
      int[] xp,
      int xo,
      int half,
      float[] xs,
      int so,
      int blocks,
      float[] ws,
      int wo,
      float[] acc,
      int ao,
      short[] sums,
      int nb) {
    int h = I.length();
    for (int kk = 0; kk < nb; kk++) {
      ShortVector a00 = ShortVector.zero(S);
      ShortVector a01 = ShortVector.zero(S);
      ShortVector a10 = ShortVector.zero(S);
      ShortVector a11 = ShortVector.zero(S);
      ShortVector a20 = ShortVector.zero(S);
      ShortVector a21 = ShortVector.zero(S);
      ShortVector a30 = ShortVector.zero(S);
      ShortVector a31 = ShortVector.zero(S);
      ShortVector a40 = ShortVector.zero(S);
      ShortVector a41 = ShortVector.zero(S);
      ShortVector a50 = ShortVector.zero(S);
      ShortVector a51 = ShortVector.zero(S);
      ShortVector a60 = ShortVector.zero(S);
      ShortVector a61 = ShortVector.zero(S);
      ShortVector a70 = ShortVector.zero(S);
      ShortVector a71 = ShortVector.zero(S);
      int tb = t0 + kk * PAIRS * 2 * h;
      int xb = xo + kk * PAIRS;
      for (int c = 0; c < PAIRS; c++) {
        ShortVector w0 = IntVector.fromArray(I, tile, tb + 2 * c * h).reinterpretAsShorts();
        ShortVector w1 = IntVector.fromArray(I, tile, tb + (2 * c + 1) * h).reinterpretAsShorts();
        int xc = xb + c;
        ShortVector v = IntVector.broadcast(I, xp[xc]).reinterpretAsShorts();
        a00 = a00.add(w0.mul(v));
        a01 = a01.add(w1.mul(v));
        v = IntVector.broadcast(I, xp[xc + half]).reinterpretAsShorts();
        a10 = a10.add(w0.mul(v));
        a11 = a11.add(w1.mul(v));
        v = IntVector.broadcast(I, xp[xc + 2 * half]).reinterpretAsShorts();
        a20 = a20.add(w0.mul(v));
        a21 = a21.add(w1.mul(v));
        v = IntVector.broadcast(I, xp[xc + 3 * half]).reinterpretAsShorts();
        a30 = a30.add(w0.mul(v));
        a31 = a31.add(w1.mul(v));
        v = IntVector.broadcast(I, xp[xc + 4 * half]).reinterpretAsShorts();
        a40 = a40.add(w0.mul(v));
        a41 = a41.add(w1.mul(v));
        v = IntVector.broadcast(I, xp[xc + 5 * half]).reinterpretAsShorts();
        a50 = a50.add(w0.mul(v));
        a51 = a51.add(w1.mul(v));
        v = IntVector.broadcast(I, xp[xc + 6 * half]).reinterpretAsShorts();
        a60 = a60.add(w0.mul(v));
        a61 = a61.add(w1.mul(v));
        v = IntVector.broadcast(I, xp[xc + 7 * half]).reinterpretAsShorts();
        a70 = a70.add(w0.mul(v));
        a71 = a71.add(w1.mul(v));
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
      accumulate(sums, 8, ws, wo + kk * PANEL, xs, so + kk, blocks, acc, ao);
    }
  }

  /** {@link #rows8} for four input rows (rows left over). */
  private static void rows4(
      int[] tile,
      int t0,
      int[] xp,
      int xo,
      int half,
      float[] xs,
      int so,
      int blocks,
      float[] ws,
      int wo,
      float[] acc,
      int ao,
      short[] sums,
      int nb) {
    int h = I.length();
    for (int kk = 0; kk < nb; kk++) {
      ShortVector a00 = ShortVector.zero(S);
      ShortVector a01 = ShortVector.zero(S);
      ShortVector a10 = ShortVector.zero(S);
      ShortVector a11 = ShortVector.zero(S);
      ShortVector a20 = ShortVector.zero(S);
      ShortVector a21 = ShortVector.zero(S);
      ShortVector a30 = ShortVector.zero(S);
      ShortVector a31 = ShortVector.zero(S);
      int tb = t0 + kk * PAIRS * 2 * h;
      int xb = xo + kk * PAIRS;
      for (int c = 0; c < PAIRS; c++) {
        ShortVector w0 = IntVector.fromArray(I, tile, tb + 2 * c * h).reinterpretAsShorts();
        ShortVector w1 = IntVector.fromArray(I, tile, tb + (2 * c + 1) * h).reinterpretAsShorts();
        int xc = xb + c;
        ShortVector v = IntVector.broadcast(I, xp[xc]).reinterpretAsShorts();
        a00 = a00.add(w0.mul(v));
        a01 = a01.add(w1.mul(v));
        v = IntVector.broadcast(I, xp[xc + half]).reinterpretAsShorts();
        a10 = a10.add(w0.mul(v));
        a11 = a11.add(w1.mul(v));
        v = IntVector.broadcast(I, xp[xc + 2 * half]).reinterpretAsShorts();
        a20 = a20.add(w0.mul(v));
        a21 = a21.add(w1.mul(v));
        v = IntVector.broadcast(I, xp[xc + 3 * half]).reinterpretAsShorts();
        a30 = a30.add(w0.mul(v));
        a31 = a31.add(w1.mul(v));
      }
      a00.intoArray(sums, 0);
      a01.intoArray(sums, PANEL);
      a10.intoArray(sums, 2 * PANEL);
      a11.intoArray(sums, 3 * PANEL);
      a20.intoArray(sums, 4 * PANEL);
      a21.intoArray(sums, 5 * PANEL);
      a30.intoArray(sums, 6 * PANEL);
      a31.intoArray(sums, 7 * PANEL);
      accumulate(sums, 4, ws, wo + kk * PANEL, xs, so + kk, blocks, acc, ao);
    }
  }

  /** {@link #rows8} for one input row (the last rows left over). */
  private static void row1(
      int[] tile,
      int t0,
      int[] xp,
      int xo,
      int half,
      float[] xs,
      int so,
      int blocks,
      float[] ws,
      int wo,
      float[] acc,
      int ao,
      short[] sums,
      int nb) {
    int h = I.length();
    for (int kk = 0; kk < nb; kk++) {
      ShortVector a00 = ShortVector.zero(S);
      ShortVector a01 = ShortVector.zero(S);
      int tb = t0 + kk * PAIRS * 2 * h;
      int xb = xo + kk * PAIRS;
      for (int c = 0; c < PAIRS; c++) {
        ShortVector w0 = IntVector.fromArray(I, tile, tb + 2 * c * h).reinterpretAsShorts();
        ShortVector w1 = IntVector.fromArray(I, tile, tb + (2 * c + 1) * h).reinterpretAsShorts();
        int xc = xb + c;
        ShortVector v = IntVector.broadcast(I, xp[xc]).reinterpretAsShorts();
        a00 = a00.add(w0.mul(v));
        a01 = a01.add(w1.mul(v));
      }
      a00.intoArray(sums, 0);
      a01.intoArray(sums, PANEL);
      accumulate(sums, 1, ws, wo + kk * PANEL, xs, so + kk, blocks, acc, ao);
    }
  }

  /**
   * {@code acc += sum * (wScale * xScale)} for {@code n} rows of one block: row {@code r}'s two
   * 16-bit accumulators at {@code sums[2r*PANEL..)} hold per output an even- and an odd-column sum
   * in adjacent lanes; as ints, their sum is the block's exact integer sum (low half sign-extended
   * by a shift pair, high half by an arithmetic shift). Then one fma per lane, as in the per-panel
   * kernels. Apart from the micro-kernels because C2 stops inlining Vector API calls past a node
   * budget, and a vector crossing a call that was not inlined is boxed.
   */
  private static void accumulate(
      short[] sums,
      int n,
      float[] ws,
      int wo,
      float[] xs,
      int so,
      int blocks,
      float[] acc,
      int ao) {
    int h = F.length();
    FloatVector c0 = FloatVector.fromArray(F, ws, wo);
    FloatVector c1 = FloatVector.fromArray(F, ws, wo + h);
    for (int r = 0; r < n; r++) {
      float d = xs[so + r * blocks];
      int a = ao + r * PANEL;
      IntVector v0 = ShortVector.fromArray(S, sums, 2 * r * PANEL).reinterpretAsInts();
      IntVector v1 = ShortVector.fromArray(S, sums, (2 * r + 1) * PANEL).reinterpretAsInts();
      IntVector s0 = pairSum(v0);
      IntVector s1 = pairSum(v1);
      ((FloatVector) s0.convert(VectorOperators.I2F, 0))
          .fma(c0.mul(d), FloatVector.fromArray(F, acc, a))
          .intoArray(acc, a);
      ((FloatVector) s1.convert(VectorOperators.I2F, 0))
          .fma(c1.mul(d), FloatVector.fromArray(F, acc, a + h))
          .intoArray(acc, a + h);
    }
  }

  /** Per int lane, its low 16 bits plus its high 16 bits, both signed. */
  private static IntVector pairSum(IntVector v) {
    return v.lanewise(VectorOperators.LSHL, 16)
        .lanewise(VectorOperators.ASHR, 16)
        .add(v.lanewise(VectorOperators.ASHR, 16));
  }
}
