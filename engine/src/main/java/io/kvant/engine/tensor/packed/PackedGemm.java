package io.kvant.engine.tensor.packed;

import static io.kvant.engine.tensor.packed.PackedMatrix.BLOCK;
import static io.kvant.engine.tensor.packed.PackedMatrix.F;
import static io.kvant.engine.tensor.packed.PackedMatrix.PANEL;

import java.util.Arrays;
import jdk.incubator.vector.FloatVector;

/**
 * The product of a {@link PackedMatrix} with many input rows (prefill chunks, large batches): a
 * cache-blocked GEMM behind {@link PackedMatrix#matmulTiled} for 8-bit codes ({@link PackedQ8}:
 * Q8_0, I8, asymmetric I4). It would serve nibbles too, but {@link NibbleGemm} is faster there.
 *
 * <p>Design note: the per-panel kernels widen every weight to 16 bits once per four input rows and
 * convert every 16-bit product pair to int, some ten instructions per 64 multiply-adds and row, and
 * stream all input rows through the cache once per panel. Here a tile of weights ({@link #KC}
 * blocks of {@link #GROUP} panels) is decoded to float once per call and then multiplied by every
 * input row while it sits in L1/L2; the micro-kernel takes {@link #MR} input rows times one panel
 * ({@code PANEL} outputs, two float vectors) per pass: per column two weight loads, eight
 * broadcasts and sixteen FMAs, i.e. one instruction per 16 multiply-adds for the FMAs. Each group
 * of input rows is applied to all panels of the group before the next, so its activations are read
 * from L1 {@code GROUP} times per chunk.
 *
 * <p>Numerics: weights and activation codes are integers with {@code |w| <= 128}, {@code |x| <=
 * 127}, so every partial block sum ({@code <= 32*128*127 < 2^24}) is exact in float: a block sum
 * equals the integer one, and the accumulator then gets the same {@code fma(sum, wScale * xScale,
 * acc)} per block in increasing block order as in the per-panel kernels. Results are bitwise those
 * of {@link PackedMatrix#matmulReference}.
 *
 * <p>Stateless; scratch (a weight tile, and the group's accumulators: 128 KiB at 256 rows) is
 * allocated per call, against milliseconds of work.
 */
final class PackedGemm {
  /** Blocks of 32 columns per chunk: a panel's decoded tile is 16 KiB with AVX-512. */
  static final int KC = 4;

  /** Panels decoded per chunk, so one group of input rows serves several panels from L1. */
  static final int GROUP = 4;

  /** Input rows per micro-kernel pass. */
  static final int MR = 8;

  private PackedGemm() {}

  /**
   * {@code out[b*rows + r]} for every input row {@code b} of {@code x} and every row {@code r} of
   * panels {@code [panelStart, panelEnd)} of {@code m}; other elements untouched. Arguments are
   * checked by the caller.
   */
  static void multiply(
      PackedMatrix m, QuantizedInput x, float[] out, int panelStart, int panelEnd) {
    int batch = x.batch();
    int cols = m.cols;
    int blocks = m.blocks;
    float[] xf = x.floatCodes();
    float[] xs = x.scales();
    int tileSize = KC * BLOCK * PANEL;
    float[] tile = new float[GROUP * tileSize];
    float[] acc = new float[GROUP * batch * PANEL];
    float[] sums = new float[MR * PANEL];
    // The tile's weight scales as floats, KC blocks of PANEL per panel.
    float[] wsc = new float[GROUP * KC * PANEL];
    for (int g = panelStart; g < panelEnd; g += GROUP) {
      int np = Math.min(GROUP, panelEnd - g);
      Arrays.fill(acc, 0, np * batch * PANEL, 0f);
      for (int k0 = 0; k0 < blocks; k0 += KC) {
        int nb = Math.min(KC, blocks - k0);
        for (int q = 0; q < np; q++) {
          m.decodeTile(g + q, k0, k0 + nb, tile, q * tileSize);
          m.decodeScales(g + q, k0, nb, wsc, q * KC * PANEL);
        }
        int b = 0;
        while (b < batch) {
          // Eight rows per pass, then four, then one at a time (the rows left over).
          int n = batch - b >= MR ? MR : batch - b >= 4 ? 4 : 1;
          for (int q = 0; q < np; q++) {
            int t0 = q * tileSize;
            int xo = b * cols + k0 * BLOCK;
            int so = b * blocks + k0;
            int ws = q * KC * PANEL;
            int ao = (q * batch + b) * PANEL;
            if (n == MR) {
              rows8(tile, t0, xf, xo, cols, xs, so, blocks, wsc, ws, acc, ao, sums, nb);
            } else if (n == 4) {
              rows4(tile, t0, xf, xo, cols, xs, so, blocks, wsc, ws, acc, ao, sums, nb);
            } else {
              row1(tile, t0, xf, xo, xs, so, wsc, ws, acc, ao, sums, nb);
            }
          }
          b += n;
        }
      }
      storeGroup(m, acc, g, np, batch, out);
    }
  }

  /**
   * Copies a group's accumulators ({@code acc[(q*batch + b)*PANEL + i]} for its {@code np} panels
   * from panel {@code g}) to {@code out[b*rows + r]}, padding rows left out. Shared with {@link
   * NibbleGemm}, whose groups are laid out the same way.
   */
  static void storeGroup(PackedMatrix m, float[] acc, int g, int np, int batch, float[] out) {
    for (int q = 0; q < np; q++) {
      int first = (g + q) * PANEL;
      int valid = Math.min(PANEL, m.rows - first);
      for (int b = 0; b < batch; b++) {
        System.arraycopy(acc, (q * batch + b) * PANEL, out, b * m.rows + first, valid);
      }
    }
  }

  /**
   * {@link #MR} input rows against one panel's tile, {@code nb} blocks: the tile at {@code
   * tile[t0..)}, the first row's codes at {@code xf[xo..)} (row stride {@code cols}), its block
   * scales at {@code xs[so..)} (row stride {@code blocks}), weight scales at {@code ws[wo..)}
   * (block stride {@code PANEL}), accumulators at {@code acc[ao..)} (row stride {@code PANEL}).
   */
  private static void rows8(
      float[] tile,
      int t0,
      float[] xf,
      int xo,
      int cols,
      float[] xs,
      int so,
      int blocks,
      float[] ws,
      int wo,
      float[] acc,
      int ao,
      float[] sums,
      int nb) {
    int h = F.length();
    for (int kk = 0; kk < nb; kk++) {
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
      int tb = t0 + kk * BLOCK * PANEL;
      int xb = xo + kk * BLOCK;
      for (int j = 0; j < BLOCK; j++) {
        FloatVector w0 = FloatVector.fromArray(F, tile, tb + j * PANEL);
        FloatVector w1 = FloatVector.fromArray(F, tile, tb + j * PANEL + h);
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
      accumulate(sums, MR, ws, wo + kk * PANEL, xs, so + kk, blocks, acc, ao);
    }
  }

  /** {@link #rows8} for four input rows (rows left over). */
  private static void rows4(
      float[] tile,
      int t0,
      float[] xf,
      int xo,
      int cols,
      float[] xs,
      int so,
      int blocks,
      float[] ws,
      int wo,
      float[] acc,
      int ao,
      float[] sums,
      int nb) {
    int h = F.length();
    for (int kk = 0; kk < nb; kk++) {
      FloatVector s00 = FloatVector.zero(F);
      FloatVector s01 = FloatVector.zero(F);
      FloatVector s10 = FloatVector.zero(F);
      FloatVector s11 = FloatVector.zero(F);
      FloatVector s20 = FloatVector.zero(F);
      FloatVector s21 = FloatVector.zero(F);
      FloatVector s30 = FloatVector.zero(F);
      FloatVector s31 = FloatVector.zero(F);
      int tb = t0 + kk * BLOCK * PANEL;
      int xb = xo + kk * BLOCK;
      for (int j = 0; j < BLOCK; j++) {
        FloatVector w0 = FloatVector.fromArray(F, tile, tb + j * PANEL);
        FloatVector w1 = FloatVector.fromArray(F, tile, tb + j * PANEL + h);
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
      }
      s00.intoArray(sums, 0);
      s01.intoArray(sums, h);
      s10.intoArray(sums, PANEL);
      s11.intoArray(sums, PANEL + h);
      s20.intoArray(sums, 2 * PANEL);
      s21.intoArray(sums, 2 * PANEL + h);
      s30.intoArray(sums, 3 * PANEL);
      s31.intoArray(sums, 3 * PANEL + h);
      accumulate(sums, 4, ws, wo + kk * PANEL, xs, so + kk, blocks, acc, ao);
    }
  }

  /** {@link #rows8} for one input row (the last rows left over). */
  private static void row1(
      float[] tile,
      int t0,
      float[] xf,
      int xo,
      float[] xs,
      int so,
      float[] ws,
      int wo,
      float[] acc,
      int ao,
      float[] sums,
      int nb) {
    int h = F.length();
    for (int kk = 0; kk < nb; kk++) {
      FloatVector s0 = FloatVector.zero(F);
      FloatVector s1 = FloatVector.zero(F);
      int tb = t0 + kk * BLOCK * PANEL;
      int xb = xo + kk * BLOCK;
      for (int j = 0; j < BLOCK; j++) {
        FloatVector v = FloatVector.broadcast(F, xf[xb + j]);
        s0 = FloatVector.fromArray(F, tile, tb + j * PANEL).fma(v, s0);
        s1 = FloatVector.fromArray(F, tile, tb + j * PANEL + h).fma(v, s1);
      }
      s0.intoArray(sums, 0);
      s1.intoArray(sums, h);
      accumulate(sums, 1, ws, wo + kk * PANEL, xs, so + kk, 0, acc, ao);
    }
  }

  /**
   * {@code acc += sum * (wScale * xScale)} for {@code n} rows of one block, as one fma per lane
   * (the operation and rounding of the per-panel kernels): block sums at {@code sums[r*PANEL..)},
   * weight scales at {@code ws[wo..)}, row {@code r}'s activation scale at {@code xs[so +
   * r*blocks]}, accumulators at {@code acc[ao + r*PANEL..)}. Apart from the micro-kernel (its sums
   * pass through a small array) because C2 stops inlining Vector API calls in one method past a
   * node budget, and a vector that crosses a call that was not inlined is boxed.
   */
  private static void accumulate(
      float[] sums,
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
      FloatVector s0 = FloatVector.fromArray(F, sums, r * PANEL);
      FloatVector s1 = FloatVector.fromArray(F, sums, r * PANEL + h);
      s0.fma(c0.mul(d), FloatVector.fromArray(F, acc, a)).intoArray(acc, a);
      s1.fma(c1.mul(d), FloatVector.fromArray(F, acc, a + h)).intoArray(acc, a + h);
    }
  }
}
