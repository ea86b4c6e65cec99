package io.kvant.engine.tensor.packed;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;

/**
 * 4-bit packed weights (Q4_0, symmetric I4), values in {@code [-8, 7]} as two's-complement nibbles:
 * for panel {@code p}, block {@code k}, column pair {@code c}, the byte of row {@code i} at {@code
 * ((p*blocks + k)*16 + c)*PANEL + i} holds column {@code 2c} in its low and {@code 2c+1} in its
 * high nibble.
 *
 * <p>Kernel: a loaded byte sign-extended to 16 bits gives the high nibble by an arithmetic shift
 * right by 4 and the low one by shifting left 12 then right 12. A whole block accumulates in 16-bit
 * lanes ({@code 32 * 8 * 127 < 32768}) and is widened to float once per block.
 */
final class PackedQ4 extends PackedMatrix {
  private static final int PAIRS = BLOCK / 2;

  PackedQ4(BlockSource src) {
    super(src, (long) src.blocks() * PAIRS * PANEL);
  }

  @Override
  void fill(BlockSource src, int start, int end) {
    int[] v = new int[BLOCK];
    byte[] chunk = new byte[PAIRS * PANEL];
    for (int p = start; p < end; p++) {
      for (int k = 0; k < blocks; k++) {
        java.util.Arrays.fill(chunk, (byte) 0);
        for (int i = 0; i < PANEL; i++) {
          int r = p * PANEL + i;
          if (r >= rows) {
            break;
          }
          src.values(r, k, v);
          for (int c = 0; c < PAIRS; c++) {
            chunk[c * PANEL + i] = (byte) ((v[2 * c] & 0xF) | (v[2 * c + 1] << 4));
          }
          scales[(p * blocks + k) * PANEL + i] = src.scale(r, k);
        }
        long at = ((long) p * blocks + k) * PAIRS * PANEL;
        MemorySegment.copy(chunk, 0, codes, ValueLayout.JAVA_BYTE, at, chunk.length);
      }
    }
  }

  @Override
  int weight(int p, int i, int k, int j) {
    byte b =
        codes.get(ValueLayout.JAVA_BYTE, (((long) p * blocks + k) * PAIRS + j / 2) * PANEL + i);
    return (j & 1) == 0 ? (byte) (b << 4) >> 4 : b >> 4;
  }

  @Override
  void tiled(QuantizedInput x, float[] out, int panelStart, int panelEnd) {
    NibbleGemm.multiply(this, x, out, panelStart, panelEnd);
  }

  @Override
  void decodeTile(int p, int k0, int k1, float[] dst, int at) {
    // Pair c of the chunk holds columns 2c (low nibble) and 2c+1 (high nibble).
    long src = ((long) p * blocks + k0) * PAIRS * PANEL;
    int pairs = (k1 - k0) * PAIRS;
    int h = F.length();
    for (int c = 0; c < pairs; c++) {
      ShortVector w = loadWide(codes, src + (long) c * PANEL);
      ShortVector lo = w.lanewise(VectorOperators.LSHL, 12).lanewise(VectorOperators.ASHR, 12);
      ShortVector hi = w.lanewise(VectorOperators.ASHR, 4);
      int d = at + 2 * c * PANEL;
      ((FloatVector) lo.convertShape(VectorOperators.S2F, F, 0)).intoArray(dst, d);
      ((FloatVector) lo.convertShape(VectorOperators.S2F, F, 1)).intoArray(dst, d + h);
      ((FloatVector) hi.convertShape(VectorOperators.S2F, F, 0)).intoArray(dst, d + PANEL);
      ((FloatVector) hi.convertShape(VectorOperators.S2F, F, 1)).intoArray(dst, d + PANEL + h);
    }
  }

  /**
   * Blocks {@code [k0, k1)} of panel {@code p} for {@link NibbleGemm}: for chunk column pair {@code
   * c} and half {@code hh} (panel rows {@code [hh*H, hh*H + H)}, {@code H} the int lane count), int
   * lane {@code i} at {@code dst[at + (2c + hh)*H + i]} holds the row's weight of column {@code 2c}
   * in its low and of column {@code 2c+1} in its high 16 bits (each sign-extended).
   */
  void decodePairTile(int p, int k0, int k1, int[] dst, int at) {
    long src = ((long) p * blocks + k0) * PAIRS * PANEL;
    int pairs = (k1 - k0) * PAIRS;
    int h = I.length();
    for (int c = 0; c < pairs; c++) {
      ByteVector b =
          ByteVector.fromMemorySegment(BP, codes, src + (long) c * PANEL, ByteOrder.LITTLE_ENDIAN);
      for (int hh = 0; hh < 2; hh++) {
        IntVector v = (IntVector) b.convertShape(VectorOperators.B2I, I, hh);
        IntVector hi = v.lanewise(VectorOperators.ASHR, 4);
        IntVector lo = v.lanewise(VectorOperators.LSHL, 28).lanewise(VectorOperators.ASHR, 28);
        hi.lanewise(VectorOperators.LSHL, 16)
            .or(lo.and(0xFFFF))
            .intoArray(dst, at + (2 * c + hh) * h);
      }
    }
  }

  @Override
  void panel(int p, short[] xq, int xo, float[] xs, int so, float[] out, int o, int valid) {
    FloatVector acc0 = FloatVector.zero(F);
    FloatVector acc1 = FloatVector.zero(F);
    long base = (long) p * blocks * PAIRS * PANEL;
    int sb = p * blocks * PANEL;
    for (int k = 0; k < blocks; k++) {
      ShortVector a = ShortVector.zero(S);
      long wo = base + (long) k * PAIRS * PANEL;
      int xk = xo + k * BLOCK;
      for (int c = 0; c < PAIRS; c++) {
        ShortVector w = loadWide(codes, wo + (long) c * PANEL);
        ShortVector lo = w.lanewise(VectorOperators.LSHL, 12).lanewise(VectorOperators.ASHR, 12);
        ShortVector hi = w.lanewise(VectorOperators.ASHR, 4);
        a = a.add(lo.mul(xq[xk + 2 * c])).add(hi.mul(xq[xk + 2 * c + 1]));
      }
      float d = xs[so + k];
      int si = sb + k * PANEL;
      FloatVector s0 = FloatVector.fromArray(F, scales, si).mul(d);
      FloatVector s1 = FloatVector.fromArray(F, scales, si + F.length()).mul(d);
      acc0 = ((FloatVector) a.convertShape(VectorOperators.S2F, F, 0)).fma(s0, acc0);
      acc1 = ((FloatVector) a.convertShape(VectorOperators.S2F, F, 1)).fma(s1, acc1);
    }
    store(acc0, acc1, out, o, valid);
  }

  @Override
  void panel2(int p, short[] xq, int xo, float[] xs, int so, float[] out, int o, int valid) {
    FloatVector c00 = FloatVector.zero(F);
    FloatVector c01 = FloatVector.zero(F);
    FloatVector c10 = FloatVector.zero(F);
    FloatVector c11 = FloatVector.zero(F);
    long base = (long) p * blocks * PAIRS * PANEL;
    int sb = p * blocks * PANEL;
    for (int k = 0; k < blocks; k++) {
      ShortVector a0 = ShortVector.zero(S);
      ShortVector a1 = ShortVector.zero(S);
      long wo = base + (long) k * PAIRS * PANEL;
      int x0 = xo + k * BLOCK;
      int x1 = x0 + cols;
      for (int c = 0; c < PAIRS; c++) {
        ShortVector w = loadWide(codes, wo + (long) c * PANEL);
        ShortVector lo = w.lanewise(VectorOperators.LSHL, 12).lanewise(VectorOperators.ASHR, 12);
        ShortVector hi = w.lanewise(VectorOperators.ASHR, 4);
        int j = 2 * c;
        a0 = a0.add(lo.mul(xq[x0 + j])).add(hi.mul(xq[x0 + j + 1]));
        a1 = a1.add(lo.mul(xq[x1 + j])).add(hi.mul(xq[x1 + j + 1]));
      }
      int si = sb + k * PANEL;
      FloatVector w0 = FloatVector.fromArray(F, scales, si);
      FloatVector w1 = FloatVector.fromArray(F, scales, si + F.length());
      float d0 = xs[so + k];
      float d1 = xs[so + blocks + k];
      c00 = ((FloatVector) a0.convertShape(VectorOperators.S2F, F, 0)).fma(w0.mul(d0), c00);
      c01 = ((FloatVector) a0.convertShape(VectorOperators.S2F, F, 1)).fma(w1.mul(d0), c01);
      c10 = ((FloatVector) a1.convertShape(VectorOperators.S2F, F, 0)).fma(w0.mul(d1), c10);
      c11 = ((FloatVector) a1.convertShape(VectorOperators.S2F, F, 1)).fma(w1.mul(d1), c11);
    }
    store(c00, c01, out, o, valid);
    store(c10, c11, out, o + rows, valid);
  }

  @Override
  void panel4(int p, short[] xq, int xo, float[] xs, int so, float[] out, int o, int valid) {
    FloatVector c00 = FloatVector.zero(F);
    FloatVector c01 = FloatVector.zero(F);
    FloatVector c10 = FloatVector.zero(F);
    FloatVector c11 = FloatVector.zero(F);
    FloatVector c20 = FloatVector.zero(F);
    FloatVector c21 = FloatVector.zero(F);
    FloatVector c30 = FloatVector.zero(F);
    FloatVector c31 = FloatVector.zero(F);
    long base = (long) p * blocks * PAIRS * PANEL;
    int sb = p * blocks * PANEL;
    for (int k = 0; k < blocks; k++) {
      ShortVector a0 = ShortVector.zero(S);
      ShortVector a1 = ShortVector.zero(S);
      ShortVector a2 = ShortVector.zero(S);
      ShortVector a3 = ShortVector.zero(S);
      long wo = base + (long) k * PAIRS * PANEL;
      int x0 = xo + k * BLOCK;
      int x1 = x0 + cols;
      int x2 = x1 + cols;
      int x3 = x2 + cols;
      for (int c = 0; c < PAIRS; c++) {
        ShortVector w = loadWide(codes, wo + (long) c * PANEL);
        ShortVector lo = w.lanewise(VectorOperators.LSHL, 12).lanewise(VectorOperators.ASHR, 12);
        ShortVector hi = w.lanewise(VectorOperators.ASHR, 4);
        int j = 2 * c;
        a0 = a0.add(lo.mul(xq[x0 + j])).add(hi.mul(xq[x0 + j + 1]));
        a1 = a1.add(lo.mul(xq[x1 + j])).add(hi.mul(xq[x1 + j + 1]));
        a2 = a2.add(lo.mul(xq[x2 + j])).add(hi.mul(xq[x2 + j + 1]));
        a3 = a3.add(lo.mul(xq[x3 + j])).add(hi.mul(xq[x3 + j + 1]));
      }
      int si = sb + k * PANEL;
      FloatVector w0 = FloatVector.fromArray(F, scales, si);
      FloatVector w1 = FloatVector.fromArray(F, scales, si + F.length());
      float d0 = xs[so + k];
      float d1 = xs[so + blocks + k];
      float d2 = xs[so + 2 * blocks + k];
      float d3 = xs[so + 3 * blocks + k];
      c00 = ((FloatVector) a0.convertShape(VectorOperators.S2F, F, 0)).fma(w0.mul(d0), c00);
      c01 = ((FloatVector) a0.convertShape(VectorOperators.S2F, F, 1)).fma(w1.mul(d0), c01);
      c10 = ((FloatVector) a1.convertShape(VectorOperators.S2F, F, 0)).fma(w0.mul(d1), c10);
      c11 = ((FloatVector) a1.convertShape(VectorOperators.S2F, F, 1)).fma(w1.mul(d1), c11);
      c20 = ((FloatVector) a2.convertShape(VectorOperators.S2F, F, 0)).fma(w0.mul(d2), c20);
      c21 = ((FloatVector) a2.convertShape(VectorOperators.S2F, F, 1)).fma(w1.mul(d2), c21);
      c30 = ((FloatVector) a3.convertShape(VectorOperators.S2F, F, 0)).fma(w0.mul(d3), c30);
      c31 = ((FloatVector) a3.convertShape(VectorOperators.S2F, F, 1)).fma(w1.mul(d3), c31);
    }
    store(c00, c01, out, o, valid);
    store(c10, c11, out, o + rows, valid);
    store(c20, c21, out, o + 2 * rows, valid);
    store(c30, c31, out, o + 3 * rows, valid);
  }
}
