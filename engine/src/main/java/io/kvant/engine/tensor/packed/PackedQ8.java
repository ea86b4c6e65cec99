package io.kvant.engine.tensor.packed;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;

/**
 * 8-bit packed weights (Q8_0, I8, asymmetric I4): for panel {@code p}, block {@code k}, column
 * {@code j}, the {@link #PANEL} rows' int8 values are the bytes at {@code ((p*blocks + k)*32 +
 * j)*PANEL}.
 *
 * <p>Kernel: two columns at a time, each widened to 16 bits and multiplied by its activation code;
 * the two products are added in 16 bits ({@code |w*x| <= 128*127}, so two fit), then widened to two
 * int accumulators per block.
 */
final class PackedQ8 extends PackedMatrix {
  PackedQ8(BlockSource src, boolean half) {
    super(src, (long) src.blocks() * BLOCK * PANEL, half);
  }

  @Override
  void fill(BlockSource src, int start, int end) {
    int[] v = new int[BLOCK];
    byte[] chunk = new byte[BLOCK * PANEL];
    for (int p = start; p < end; p++) {
      for (int k = 0; k < blocks; k++) {
        java.util.Arrays.fill(chunk, (byte) 0);
        for (int i = 0; i < PANEL; i++) {
          int r = p * PANEL + i;
          if (r >= rows) {
            break;
          }
          src.values(r, k, v);
          for (int j = 0; j < BLOCK; j++) {
            chunk[j * PANEL + i] = (byte) v[j];
          }
          putScale(p, k, i, src.scale(r, k));
        }
        long at = ((long) p * blocks + k) * BLOCK * PANEL;
        MemorySegment.copy(chunk, 0, codes, ValueLayout.JAVA_BYTE, at, chunk.length);
      }
    }
  }

  @Override
  int weight(int p, int i, int k, int j) {
    return codes.get(ValueLayout.JAVA_BYTE, (((long) p * blocks + k) * BLOCK + j) * PANEL + i);
  }

  @Override
  void tiled(QuantizedInput x, float[] out, int panelStart, int panelEnd) {
    PackedGemm.multiply(this, x, out, panelStart, panelEnd);
  }

  @Override
  void decodeTile(int p, int k0, int k1, float[] dst, int at) {
    // Columns of consecutive blocks are contiguous: one PANEL-byte run per column.
    long src = ((long) p * blocks + k0) * BLOCK * PANEL;
    int n = (k1 - k0) * BLOCK;
    for (int c = 0; c < n; c++) {
      ShortVector w = loadWide(codes, src + (long) c * PANEL);
      int d = at + c * PANEL;
      ((FloatVector) w.convertShape(VectorOperators.S2F, F, 0)).intoArray(dst, d);
      ((FloatVector) w.convertShape(VectorOperators.S2F, F, 1)).intoArray(dst, d + F.length());
    }
  }

  @Override
  void panel(int p, QuantizedInput x, int b, float[] out, int o, int valid) {
    short[] xq = x.codes();
    float[] xs = x.scales();
    short[] hs = halfScales;
    float[] fs = scales;
    int xo = b * cols;
    int so = b * blocks;
    FloatVector acc0 = FloatVector.zero(F);
    FloatVector acc1 = FloatVector.zero(F);
    long base = (long) p * blocks * BLOCK * PANEL;
    int sb = p * blocks * PANEL;
    for (int k = 0; k < blocks; k++) {
      IntVector i0 = IntVector.zero(I);
      IntVector i1 = IntVector.zero(I);
      long wo = base + (long) k * BLOCK * PANEL;
      int xk = xo + k * BLOCK;
      for (int j = 0; j < BLOCK; j += 2) {
        ShortVector w0 = loadWide(codes, wo + (long) j * PANEL);
        ShortVector w1 = loadWide(codes, wo + (long) (j + 1) * PANEL);
        ShortVector pr = w0.mul(xq[xk + j]).add(w1.mul(xq[xk + j + 1]));
        i0 = i0.add((IntVector) pr.convertShape(VectorOperators.S2I, I, 0));
        i1 = i1.add((IntVector) pr.convertShape(VectorOperators.S2I, I, 1));
      }
      float d = xs[so + k];
      int si = sb + k * PANEL;
      FloatVector ws0;
      FloatVector ws1;
      if (hs != null) {
        IntVector hv = ShortVector.fromArray(S, hs, si).reinterpretAsInts();
        ws0 =
            hv.lanewise(VectorOperators.LSHL, 16)
                .lanewise(VectorOperators.ASHR, 3)
                .and(F16_MASK)
                .reinterpretAsFloats()
                .mul(F16_SCALE);
        ws1 =
            hv.lanewise(VectorOperators.ASHR, 3).and(F16_MASK).reinterpretAsFloats().mul(F16_SCALE);
      } else {
        ws0 = FloatVector.fromArray(F, fs, si);
        ws1 = FloatVector.fromArray(F, fs, si + F.length());
      }
      FloatVector s0 = ws0.mul(d);
      FloatVector s1 = ws1.mul(d);
      acc0 = ((FloatVector) i0.convert(VectorOperators.I2F, 0)).fma(s0, acc0);
      acc1 = ((FloatVector) i1.convert(VectorOperators.I2F, 0)).fma(s1, acc1);
    }
    store(acc0, acc1, out, o, valid);
  }

  @Override
  void panel2(int p, QuantizedInput x, int b, float[] out, int o, int valid) {
    short[] xq = x.codes();
    float[] xs = x.scales();
    short[] hs = halfScales;
    float[] fs = scales;
    int xo = b * cols;
    int so = b * blocks;
    FloatVector c00 = FloatVector.zero(F);
    FloatVector c01 = FloatVector.zero(F);
    FloatVector c10 = FloatVector.zero(F);
    FloatVector c11 = FloatVector.zero(F);
    long base = (long) p * blocks * BLOCK * PANEL;
    int sb = p * blocks * PANEL;
    for (int k = 0; k < blocks; k++) {
      IntVector i00 = IntVector.zero(I);
      IntVector i01 = IntVector.zero(I);
      IntVector i10 = IntVector.zero(I);
      IntVector i11 = IntVector.zero(I);
      long wo = base + (long) k * BLOCK * PANEL;
      int x0 = xo + k * BLOCK;
      int x1 = x0 + cols;
      for (int j = 0; j < BLOCK; j += 2) {
        ShortVector w0 = loadWide(codes, wo + (long) j * PANEL);
        ShortVector w1 = loadWide(codes, wo + (long) (j + 1) * PANEL);
        ShortVector p0 = w0.mul(xq[x0 + j]).add(w1.mul(xq[x0 + j + 1]));
        ShortVector p1 = w0.mul(xq[x1 + j]).add(w1.mul(xq[x1 + j + 1]));
        i00 = i00.add((IntVector) p0.convertShape(VectorOperators.S2I, I, 0));
        i01 = i01.add((IntVector) p0.convertShape(VectorOperators.S2I, I, 1));
        i10 = i10.add((IntVector) p1.convertShape(VectorOperators.S2I, I, 0));
        i11 = i11.add((IntVector) p1.convertShape(VectorOperators.S2I, I, 1));
      }
      int si = sb + k * PANEL;
      FloatVector s0;
      FloatVector s1;
      if (hs != null) {
        IntVector hv = ShortVector.fromArray(S, hs, si).reinterpretAsInts();
        s0 =
            hv.lanewise(VectorOperators.LSHL, 16)
                .lanewise(VectorOperators.ASHR, 3)
                .and(F16_MASK)
                .reinterpretAsFloats()
                .mul(F16_SCALE);
        s1 =
            hv.lanewise(VectorOperators.ASHR, 3).and(F16_MASK).reinterpretAsFloats().mul(F16_SCALE);
      } else {
        s0 = FloatVector.fromArray(F, fs, si);
        s1 = FloatVector.fromArray(F, fs, si + F.length());
      }
      float d0 = xs[so + k];
      float d1 = xs[so + blocks + k];
      c00 = ((FloatVector) i00.convert(VectorOperators.I2F, 0)).fma(s0.mul(d0), c00);
      c01 = ((FloatVector) i01.convert(VectorOperators.I2F, 0)).fma(s1.mul(d0), c01);
      c10 = ((FloatVector) i10.convert(VectorOperators.I2F, 0)).fma(s0.mul(d1), c10);
      c11 = ((FloatVector) i11.convert(VectorOperators.I2F, 0)).fma(s1.mul(d1), c11);
    }
    store(c00, c01, out, o, valid);
    store(c10, c11, out, o + rows, valid);
  }

  @Override
  void panel4(int p, QuantizedInput x, int b, float[] out, int o, int valid) {
    short[] xq = x.codes();
    float[] xs = x.scales();
    short[] hs = halfScales;
    float[] fs = scales;
    int xo = b * cols;
    int so = b * blocks;
    FloatVector c00 = FloatVector.zero(F);
    FloatVector c01 = FloatVector.zero(F);
    FloatVector c10 = FloatVector.zero(F);
    FloatVector c11 = FloatVector.zero(F);
    FloatVector c20 = FloatVector.zero(F);
    FloatVector c21 = FloatVector.zero(F);
    FloatVector c30 = FloatVector.zero(F);
    FloatVector c31 = FloatVector.zero(F);
    long base = (long) p * blocks * BLOCK * PANEL;
    int sb = p * blocks * PANEL;
    for (int k = 0; k < blocks; k++) {
      IntVector i00 = IntVector.zero(I);
      IntVector i01 = IntVector.zero(I);
      IntVector i10 = IntVector.zero(I);
      IntVector i11 = IntVector.zero(I);
      IntVector i20 = IntVector.zero(I);
      IntVector i21 = IntVector.zero(I);
      IntVector i30 = IntVector.zero(I);
      IntVector i31 = IntVector.zero(I);
      long wo = base + (long) k * BLOCK * PANEL;
      int x0 = xo + k * BLOCK;
      int x1 = x0 + cols;
      int x2 = x1 + cols;
      int x3 = x2 + cols;
      for (int j = 0; j < BLOCK; j += 2) {
        ShortVector w0 = loadWide(codes, wo + (long) j * PANEL);
        ShortVector w1 = loadWide(codes, wo + (long) (j + 1) * PANEL);
        ShortVector p0 = w0.mul(xq[x0 + j]).add(w1.mul(xq[x0 + j + 1]));
        ShortVector p1 = w0.mul(xq[x1 + j]).add(w1.mul(xq[x1 + j + 1]));
        ShortVector p2 = w0.mul(xq[x2 + j]).add(w1.mul(xq[x2 + j + 1]));
        ShortVector p3 = w0.mul(xq[x3 + j]).add(w1.mul(xq[x3 + j + 1]));
        i00 = i00.add((IntVector) p0.convertShape(VectorOperators.S2I, I, 0));
        i01 = i01.add((IntVector) p0.convertShape(VectorOperators.S2I, I, 1));
        i10 = i10.add((IntVector) p1.convertShape(VectorOperators.S2I, I, 0));
        i11 = i11.add((IntVector) p1.convertShape(VectorOperators.S2I, I, 1));
        i20 = i20.add((IntVector) p2.convertShape(VectorOperators.S2I, I, 0));
        i21 = i21.add((IntVector) p2.convertShape(VectorOperators.S2I, I, 1));
        i30 = i30.add((IntVector) p3.convertShape(VectorOperators.S2I, I, 0));
        i31 = i31.add((IntVector) p3.convertShape(VectorOperators.S2I, I, 1));
      }
      int si = sb + k * PANEL;
      FloatVector s0;
      FloatVector s1;
      if (hs != null) {
        IntVector hv = ShortVector.fromArray(S, hs, si).reinterpretAsInts();
        s0 =
            hv.lanewise(VectorOperators.LSHL, 16)
                .lanewise(VectorOperators.ASHR, 3)
                .and(F16_MASK)
                .reinterpretAsFloats()
                .mul(F16_SCALE);
        s1 =
            hv.lanewise(VectorOperators.ASHR, 3).and(F16_MASK).reinterpretAsFloats().mul(F16_SCALE);
      } else {
        s0 = FloatVector.fromArray(F, fs, si);
        s1 = FloatVector.fromArray(F, fs, si + F.length());
      }
      float d0 = xs[so + k];
      float d1 = xs[so + blocks + k];
      float d2 = xs[so + 2 * blocks + k];
      float d3 = xs[so + 3 * blocks + k];
      c00 = ((FloatVector) i00.convert(VectorOperators.I2F, 0)).fma(s0.mul(d0), c00);
      c01 = ((FloatVector) i01.convert(VectorOperators.I2F, 0)).fma(s1.mul(d0), c01);
      c10 = ((FloatVector) i10.convert(VectorOperators.I2F, 0)).fma(s0.mul(d1), c10);
      c11 = ((FloatVector) i11.convert(VectorOperators.I2F, 0)).fma(s1.mul(d1), c11);
      c20 = ((FloatVector) i20.convert(VectorOperators.I2F, 0)).fma(s0.mul(d2), c20);
      c21 = ((FloatVector) i21.convert(VectorOperators.I2F, 0)).fma(s1.mul(d2), c21);
      c30 = ((FloatVector) i30.convert(VectorOperators.I2F, 0)).fma(s0.mul(d3), c30);
      c31 = ((FloatVector) i31.convert(VectorOperators.I2F, 0)).fma(s1.mul(d3), c31);
    }
    store(c00, c01, out, o, valid);
    store(c10, c11, out, o + rows, valid);
    store(c20, c21, out, o + 2 * rows, valid);
    store(c30, c31, out, o + 3 * rows, valid);
  }
}
