package io.kvant.engine.tensor.packed;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;

/**
 * 8-bit packed weights (Q8_0, I8, asymmetric I4): for panel {@code p}, block {@code k}, column
 * {@code j}, the {@link #PANEL} rows' int8 values are the bytes at {@code ((p*blocks + k)*32 +
 * j)*PANEL}.
 *
 * <p>Kernel: two columns at a time, each widened to 16 bits and multiplied by its activation code
 * (broadcast from {@link QuantizedInput#splatCodes} as an int: a load, where a short broadcast is a
 * shuffle on x86); the two products are added in 16 bits ({@code |w*x| <= 128*127}, so two fit),
 * and that int view {@code P = 2^16 hi + lo} (hi: the odd row's sum, signed; lo: the even row's, as
 * its unsigned bits) is accumulated twice: {@code P ^ 0x8000} (exactly {@code 2^16 hi + lo + 2^15},
 * since {@code lo + 2^15} lies in {@code [0, 2^16)}) and {@code P >> 16} (exactly hi). At the
 * block's end the odd rows' sum is the second, and the even rows' is the first less the second
 * shifted up and less {@code 16 * 2^15}, modulo {@code 2^32}, which is exact since the true sum
 * lies within {@code 16 * 2 * 128 * 127 < 2^31} of zero. Three operations per column pair where
 * shifting each half out (left then right for the even rows) took four, and the shifts on count
 * vectors (shifts by a scalar constant cost C2 a count move each time, as {@link PackedQ4} found).
 * The block scales are put in the same even/odd order once per block and the accumulators back in
 * row order once per panel (perf/RESULTS.md, "Session 15": 1.19-1.22x per product in JMH for the
 * shift form over lane conversions; "Session 27" for this one). {@link #panel}, {@link #panel2} and
 * {@link #panel4} repeat the block's scale decode and epilogue written out on purpose: helper
 * methods taking or returning vectors were left un-inlined by C2 in a kernel of this size, and the
 * vectors boxed (perf/RESULTS.md, "Session 16", {@code panelQuad}).
 */
final class PackedQ8 extends PackedMatrix {
  PackedQ8(BlockSource src, boolean half, CodeSlabs slabs) {
    super(src, (long) src.blocks() * BLOCK * PANEL, half, slabs);
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

  /**
   * Lane {@code i}: panel row {@code 2i} ({@link #EVEN}) or {@code 2i+1} ({@link #ODD}) of a pair
   * of row-ordered vectors; {@link #LOW} and {@link #HIGH}: panel row {@code i} or {@code n + i} of
   * an even-row and an odd-row vector (the two-vector {@code rearrange}: negative indexes take the
   * second vector).
   */
  private static final VectorShuffle<Float> EVEN = VectorShuffle.fromOp(F, i -> inRows(2 * i));

  private static final VectorShuffle<Float> ODD = VectorShuffle.fromOp(F, i -> inRows(2 * i + 1));

  private static final VectorShuffle<Float> LOW = VectorShuffle.fromOp(F, i -> inParities(i));

  private static final VectorShuffle<Float> HIGH =
      VectorShuffle.fromOp(F, i -> inParities(F.length() + i));

  /** The shift from an int's high 16-bit half to its low one, as a count vector. */
  private static final IntVector SHIFT16 = IntVector.broadcast(I, 16);

  /**
   * Flips the sign bit of an int's low 16-bit half: {@code lo} to {@code lo + 2^15} (class note).
   */
  private static final IntVector LOW_BIAS = IntVector.broadcast(I, 0x8000);

  /** What a block's 16 column pairs add to the even rows' accumulator through {@link #LOW_BIAS}. */
  private static final IntVector BLOCK_BIAS = IntVector.broadcast(I, BLOCK / 2 * 0x8000);

  /**
   * Where panel row {@code r} is in a pair of vectors of rows {@code [0, n)} and {@code [n, 2n)}.
   */
  private static int inRows(int r) {
    return r < F.length() ? r : r - 2 * F.length();
  }

  /** Where panel row {@code r} is in a pair of vectors of the even rows and the odd rows. */
  private static int inParities(int r) {
    return r % 2 == 0 ? r / 2 : r / 2 - F.length();
  }

  /**
   * One input row, widened by shifts (the class note); each row's operations and their order are
   * those of {@link #panel2}'s first row: the same bits.
   */
  @Override
  void panel(int p, QuantizedInput x, int b, float[] out, int o, int valid, float[] c) {
    int[] xq = x.splatCodes();
    float[] xs = x.scales();
    short[] hs = halfScales;
    float[] fs = scales;
    int xo = b * cols;
    int so = b * blocks;
    FloatVector accE = FloatVector.zero(F);
    FloatVector accO = FloatVector.zero(F);
    long base = (long) p * blocks * BLOCK * PANEL;
    int sb = p * blocks * PANEL;
    for (int k = 0; k < blocks; k++) {
      IntVector ie = IntVector.zero(I);
      IntVector io = IntVector.zero(I);
      long wo = base + (long) k * BLOCK * PANEL;
      int xk = xo + k * BLOCK;
      for (int j = 0; j < BLOCK; j += 2) {
        ShortVector w0 = loadWide(codes, wo + (long) j * PANEL);
        ShortVector w1 = loadWide(codes, wo + (long) (j + 1) * PANEL);
        ShortVector x0 = IntVector.broadcast(I, xq[xk + j]).reinterpretAsShorts();
        ShortVector x1 = IntVector.broadcast(I, xq[xk + j + 1]).reinterpretAsShorts();
        IntVector pr = w0.mul(x0).add(w1.mul(x1)).reinterpretAsInts();
        ie = ie.add(pr.lanewise(VectorOperators.XOR, LOW_BIAS));
        io = io.add(pr.lanewise(VectorOperators.ASHR, SHIFT16));
      }
      ie = ie.sub(io.lanewise(VectorOperators.LSHL, SHIFT16)).sub(BLOCK_BIAS);
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
      FloatVector sE = ws0.rearrange(EVEN, ws1).mul(d);
      FloatVector sO = ws0.rearrange(ODD, ws1).mul(d);
      accE = ((FloatVector) ie.convert(VectorOperators.I2F, 0)).fma(sE, accE);
      accO = ((FloatVector) io.convert(VectorOperators.I2F, 0)).fma(sO, accO);
    }
    accE.rearrange(LOW, accO).intoArray(c, 0);
    accE.rearrange(HIGH, accO).intoArray(c, F.length());
    System.arraycopy(c, 0, out, o, valid);
  }

  /**
   * One input row: panels four at a time ({@link #panelQuad}) while four are full; the rest (at
   * most three) one at a time. At one thread the pass waits on its weight loads, and more streams
   * keep more of them in flight: on the development machine of session 34 (Zen 4), 8,192 x 2,048
   * Q8_0 one-row products read 21-22 GB/s with four streams against 18-19 with one, codes on huge
   * pages (24-28 against 14-17 on small pages). A two-panel pass for the rest was not worth its
   * code: alone it measured level with one panel on huge pages (perf/RESULTS.md, session 34). Every
   * width takes it since session 43: on two Intel hosts SmolLM2-135M's widths (18 and 48 blocks a
   * row) decode faster with four streams, 1.16x at one thread on the development machine ({@code
   * EngineAb}, both orders) and 1.13-1.39x in three alternated pairs at one thread on an Emerald
   * Rapids Xeon, where session 34's Zen 4 machine had measured 0.82x and kept them to rows of 64
   * blocks or more (docs/DECISIONS.md, session 43).
   */
  @Override
  int pairs(QuantizedInput x, float[] out, int panelStart, int panelEnd, float[] c) {
    int p = panelStart;
    for (; p + 4 <= panelEnd && (p + 4) * PANEL <= rows; p += 4) {
      panelQuad(p, x, out, c);
    }
    return p;
  }

  /**
   * {@link #panel} for input row 0 against four panels {@code p .. p+3} at once, all full: four
   * streams of weights, each activation broadcast used for eight runs; each row's result is bitwise
   * what {@link #panel} gives it (same operations, same order). {@code c}: at least {@code 16 *
   * F.length()} floats: the float sums (8 vectors), then each block's exact integer sums as floats
   * (8 vectors; |sum| < 2^24), so that the block's scale work is written once, in a loop over the
   * panels; and the loads are written out rather than through {@link #loadWide}: with eight calls a
   * run C2 reached its inlining cutoff and left some uninlined, returning boxed vectors, at half
   * the speed.
   */
  void panelQuad(int p, QuantizedInput x, float[] out, float[] c) {
    int[] xq = x.splatCodes();
    float[] xs = x.scales();
    short[] hs = halfScales;
    float[] fs = scales;
    int n = F.length();
    java.util.Arrays.fill(c, 0, 8 * n, 0f);
    long step = (long) blocks * BLOCK * PANEL;
    long base0 = (long) p * step;
    long base1 = base0 + step;
    long base2 = base1 + step;
    long base3 = base2 + step;
    int sb0 = p * blocks * PANEL;
    for (int k = 0; k < blocks; k++) {
      IntVector ie0 = IntVector.zero(I);
      IntVector io0 = IntVector.zero(I);
      IntVector ie1 = IntVector.zero(I);
      IntVector io1 = IntVector.zero(I);
      IntVector ie2 = IntVector.zero(I);
      IntVector io2 = IntVector.zero(I);
      IntVector ie3 = IntVector.zero(I);
      IntVector io3 = IntVector.zero(I);
      long ko = (long) k * BLOCK * PANEL;
      int xk = k * BLOCK;
      for (int j = 0; j < BLOCK; j += 2) {
        ShortVector x0 = IntVector.broadcast(I, xq[xk + j]).reinterpretAsShorts();
        ShortVector x1 = IntVector.broadcast(I, xq[xk + j + 1]).reinterpretAsShorts();
        ShortVector w00 =
            (ShortVector)
                ByteVector.fromMemorySegment(
                        BP, codes, base0 + ko + (long) j * PANEL, ByteOrder.LITTLE_ENDIAN)
                    .convertShape(VectorOperators.B2S, S, 0);
        ShortVector w01 =
            (ShortVector)
                ByteVector.fromMemorySegment(
                        BP, codes, base0 + ko + (long) (j + 1) * PANEL, ByteOrder.LITTLE_ENDIAN)
                    .convertShape(VectorOperators.B2S, S, 0);
        IntVector pr0 = w00.mul(x0).add(w01.mul(x1)).reinterpretAsInts();
        ie0 = ie0.add(pr0.lanewise(VectorOperators.XOR, LOW_BIAS));
        io0 = io0.add(pr0.lanewise(VectorOperators.ASHR, SHIFT16));
        ShortVector w10 =
            (ShortVector)
                ByteVector.fromMemorySegment(
                        BP, codes, base1 + ko + (long) j * PANEL, ByteOrder.LITTLE_ENDIAN)
                    .convertShape(VectorOperators.B2S, S, 0);
        ShortVector w11 =
            (ShortVector)
                ByteVector.fromMemorySegment(
                        BP, codes, base1 + ko + (long) (j + 1) * PANEL, ByteOrder.LITTLE_ENDIAN)
                    .convertShape(VectorOperators.B2S, S, 0);
        IntVector pr1 = w10.mul(x0).add(w11.mul(x1)).reinterpretAsInts();
        ie1 = ie1.add(pr1.lanewise(VectorOperators.XOR, LOW_BIAS));
        io1 = io1.add(pr1.lanewise(VectorOperators.ASHR, SHIFT16));
        ShortVector w20 =
            (ShortVector)
                ByteVector.fromMemorySegment(
                        BP, codes, base2 + ko + (long) j * PANEL, ByteOrder.LITTLE_ENDIAN)
                    .convertShape(VectorOperators.B2S, S, 0);
        ShortVector w21 =
            (ShortVector)
                ByteVector.fromMemorySegment(
                        BP, codes, base2 + ko + (long) (j + 1) * PANEL, ByteOrder.LITTLE_ENDIAN)
                    .convertShape(VectorOperators.B2S, S, 0);
        IntVector pr2 = w20.mul(x0).add(w21.mul(x1)).reinterpretAsInts();
        ie2 = ie2.add(pr2.lanewise(VectorOperators.XOR, LOW_BIAS));
        io2 = io2.add(pr2.lanewise(VectorOperators.ASHR, SHIFT16));
        ShortVector w30 =
            (ShortVector)
                ByteVector.fromMemorySegment(
                        BP, codes, base3 + ko + (long) j * PANEL, ByteOrder.LITTLE_ENDIAN)
                    .convertShape(VectorOperators.B2S, S, 0);
        ShortVector w31 =
            (ShortVector)
                ByteVector.fromMemorySegment(
                        BP, codes, base3 + ko + (long) (j + 1) * PANEL, ByteOrder.LITTLE_ENDIAN)
                    .convertShape(VectorOperators.B2S, S, 0);
        IntVector pr3 = w30.mul(x0).add(w31.mul(x1)).reinterpretAsInts();
        ie3 = ie3.add(pr3.lanewise(VectorOperators.XOR, LOW_BIAS));
        io3 = io3.add(pr3.lanewise(VectorOperators.ASHR, SHIFT16));
      }
      ((FloatVector)
              ie0.sub(io0.lanewise(VectorOperators.LSHL, SHIFT16))
                  .sub(BLOCK_BIAS)
                  .convert(VectorOperators.I2F, 0))
          .intoArray(c, 8 * n);
      ((FloatVector) io0.convert(VectorOperators.I2F, 0)).intoArray(c, 9 * n);
      ((FloatVector)
              ie1.sub(io1.lanewise(VectorOperators.LSHL, SHIFT16))
                  .sub(BLOCK_BIAS)
                  .convert(VectorOperators.I2F, 0))
          .intoArray(c, 10 * n);
      ((FloatVector) io1.convert(VectorOperators.I2F, 0)).intoArray(c, 11 * n);
      ((FloatVector)
              ie2.sub(io2.lanewise(VectorOperators.LSHL, SHIFT16))
                  .sub(BLOCK_BIAS)
                  .convert(VectorOperators.I2F, 0))
          .intoArray(c, 12 * n);
      ((FloatVector) io2.convert(VectorOperators.I2F, 0)).intoArray(c, 13 * n);
      ((FloatVector)
              ie3.sub(io3.lanewise(VectorOperators.LSHL, SHIFT16))
                  .sub(BLOCK_BIAS)
                  .convert(VectorOperators.I2F, 0))
          .intoArray(c, 14 * n);
      ((FloatVector) io3.convert(VectorOperators.I2F, 0)).intoArray(c, 15 * n);
      float d = xs[k];
      for (int q = 0; q < 4; q++) {
        int si = sb0 + (q * blocks + k) * PANEL;
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
              hv.lanewise(VectorOperators.ASHR, 3)
                  .and(F16_MASK)
                  .reinterpretAsFloats()
                  .mul(F16_SCALE);
        } else {
          ws0 = FloatVector.fromArray(F, fs, si);
          ws1 = FloatVector.fromArray(F, fs, si + F.length());
        }
        FloatVector sE = ws0.rearrange(EVEN, ws1).mul(d);
        FloatVector sO = ws0.rearrange(ODD, ws1).mul(d);
        int e = 2 * q * n;
        FloatVector.fromArray(F, c, 8 * n + e)
            .fma(sE, FloatVector.fromArray(F, c, e))
            .intoArray(c, e);
        FloatVector.fromArray(F, c, 9 * n + e)
            .fma(sO, FloatVector.fromArray(F, c, n + e))
            .intoArray(c, n + e);
      }
    }
    for (int q = 0; q < 4; q++) {
      FloatVector accE = FloatVector.fromArray(F, c, 2 * q * n);
      FloatVector accO = FloatVector.fromArray(F, c, (2 * q + 1) * n);
      accE.rearrange(LOW, accO).intoArray(out, (p + q) * PANEL);
      accE.rearrange(HIGH, accO).intoArray(out, (p + q) * PANEL + n);
    }
  }

  @Override
  void panel2(int p, QuantizedInput x, int b, float[] out, int o, int valid, float[] c) {
    int[] xq = x.splatCodes();
    float[] xs = x.scales();
    short[] hs = halfScales;
    float[] fs = scales;
    int xo = b * cols;
    int so = b * blocks;
    FloatVector ce0 = FloatVector.zero(F);
    FloatVector co0 = FloatVector.zero(F);
    FloatVector ce1 = FloatVector.zero(F);
    FloatVector co1 = FloatVector.zero(F);
    long base = (long) p * blocks * BLOCK * PANEL;
    int sb = p * blocks * PANEL;
    for (int k = 0; k < blocks; k++) {
      IntVector ie0 = IntVector.zero(I);
      IntVector io0 = IntVector.zero(I);
      IntVector ie1 = IntVector.zero(I);
      IntVector io1 = IntVector.zero(I);
      long wo = base + (long) k * BLOCK * PANEL;
      int x0 = xo + k * BLOCK;
      int x1 = x0 + cols;
      for (int j = 0; j < BLOCK; j += 2) {
        ShortVector w0 = loadWide(codes, wo + (long) j * PANEL);
        ShortVector w1 = loadWide(codes, wo + (long) (j + 1) * PANEL);
        IntVector q0 =
            w0.mul(IntVector.broadcast(I, xq[x0 + j]).reinterpretAsShorts())
                .add(w1.mul(IntVector.broadcast(I, xq[x0 + j + 1]).reinterpretAsShorts()))
                .reinterpretAsInts();
        IntVector q1 =
            w0.mul(IntVector.broadcast(I, xq[x1 + j]).reinterpretAsShorts())
                .add(w1.mul(IntVector.broadcast(I, xq[x1 + j + 1]).reinterpretAsShorts()))
                .reinterpretAsInts();
        ie0 = ie0.add(q0.lanewise(VectorOperators.XOR, LOW_BIAS));
        io0 = io0.add(q0.lanewise(VectorOperators.ASHR, SHIFT16));
        ie1 = ie1.add(q1.lanewise(VectorOperators.XOR, LOW_BIAS));
        io1 = io1.add(q1.lanewise(VectorOperators.ASHR, SHIFT16));
      }
      ie0 = ie0.sub(io0.lanewise(VectorOperators.LSHL, SHIFT16)).sub(BLOCK_BIAS);
      ie1 = ie1.sub(io1.lanewise(VectorOperators.LSHL, SHIFT16)).sub(BLOCK_BIAS);
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
      FloatVector sE = s0.rearrange(EVEN, s1);
      FloatVector sO = s0.rearrange(ODD, s1);
      float d0 = xs[so + k];
      float d1 = xs[so + blocks + k];
      ce0 = ((FloatVector) ie0.convert(VectorOperators.I2F, 0)).fma(sE.mul(d0), ce0);
      co0 = ((FloatVector) io0.convert(VectorOperators.I2F, 0)).fma(sO.mul(d0), co0);
      ce1 = ((FloatVector) ie1.convert(VectorOperators.I2F, 0)).fma(sE.mul(d1), ce1);
      co1 = ((FloatVector) io1.convert(VectorOperators.I2F, 0)).fma(sO.mul(d1), co1);
    }
    ce0.rearrange(LOW, co0).intoArray(c, 0);
    ce0.rearrange(HIGH, co0).intoArray(c, F.length());
    System.arraycopy(c, 0, out, o, valid);
    ce1.rearrange(LOW, co1).intoArray(c, 0);
    ce1.rearrange(HIGH, co1).intoArray(c, F.length());
    System.arraycopy(c, 0, out, o + rows, valid);
  }

  @Override
  void panel4(int p, QuantizedInput x, int b, float[] out, int o, int valid, float[] c) {
    int[] xq = x.splatCodes();
    float[] xs = x.scales();
    short[] hs = halfScales;
    float[] fs = scales;
    int xo = b * cols;
    int so = b * blocks;
    FloatVector ce0 = FloatVector.zero(F);
    FloatVector co0 = FloatVector.zero(F);
    FloatVector ce1 = FloatVector.zero(F);
    FloatVector co1 = FloatVector.zero(F);
    FloatVector ce2 = FloatVector.zero(F);
    FloatVector co2 = FloatVector.zero(F);
    FloatVector ce3 = FloatVector.zero(F);
    FloatVector co3 = FloatVector.zero(F);
    long base = (long) p * blocks * BLOCK * PANEL;
    int sb = p * blocks * PANEL;
    for (int k = 0; k < blocks; k++) {
      IntVector ie0 = IntVector.zero(I);
      IntVector io0 = IntVector.zero(I);
      IntVector ie1 = IntVector.zero(I);
      IntVector io1 = IntVector.zero(I);
      IntVector ie2 = IntVector.zero(I);
      IntVector io2 = IntVector.zero(I);
      IntVector ie3 = IntVector.zero(I);
      IntVector io3 = IntVector.zero(I);
      long wo = base + (long) k * BLOCK * PANEL;
      int x0 = xo + k * BLOCK;
      int x1 = x0 + cols;
      int x2 = x1 + cols;
      int x3 = x2 + cols;
      for (int j = 0; j < BLOCK; j += 2) {
        ShortVector w0 = loadWide(codes, wo + (long) j * PANEL);
        ShortVector w1 = loadWide(codes, wo + (long) (j + 1) * PANEL);
        IntVector q0 =
            w0.mul(IntVector.broadcast(I, xq[x0 + j]).reinterpretAsShorts())
                .add(w1.mul(IntVector.broadcast(I, xq[x0 + j + 1]).reinterpretAsShorts()))
                .reinterpretAsInts();
        IntVector q1 =
            w0.mul(IntVector.broadcast(I, xq[x1 + j]).reinterpretAsShorts())
                .add(w1.mul(IntVector.broadcast(I, xq[x1 + j + 1]).reinterpretAsShorts()))
                .reinterpretAsInts();
        IntVector q2 =
            w0.mul(IntVector.broadcast(I, xq[x2 + j]).reinterpretAsShorts())
                .add(w1.mul(IntVector.broadcast(I, xq[x2 + j + 1]).reinterpretAsShorts()))
                .reinterpretAsInts();
        IntVector q3 =
            w0.mul(IntVector.broadcast(I, xq[x3 + j]).reinterpretAsShorts())
                .add(w1.mul(IntVector.broadcast(I, xq[x3 + j + 1]).reinterpretAsShorts()))
                .reinterpretAsInts();
        ie0 = ie0.add(q0.lanewise(VectorOperators.XOR, LOW_BIAS));
        io0 = io0.add(q0.lanewise(VectorOperators.ASHR, SHIFT16));
        ie1 = ie1.add(q1.lanewise(VectorOperators.XOR, LOW_BIAS));
        io1 = io1.add(q1.lanewise(VectorOperators.ASHR, SHIFT16));
        ie2 = ie2.add(q2.lanewise(VectorOperators.XOR, LOW_BIAS));
        io2 = io2.add(q2.lanewise(VectorOperators.ASHR, SHIFT16));
        ie3 = ie3.add(q3.lanewise(VectorOperators.XOR, LOW_BIAS));
        io3 = io3.add(q3.lanewise(VectorOperators.ASHR, SHIFT16));
      }
      ie0 = ie0.sub(io0.lanewise(VectorOperators.LSHL, SHIFT16)).sub(BLOCK_BIAS);
      ie1 = ie1.sub(io1.lanewise(VectorOperators.LSHL, SHIFT16)).sub(BLOCK_BIAS);
      ie2 = ie2.sub(io2.lanewise(VectorOperators.LSHL, SHIFT16)).sub(BLOCK_BIAS);
      ie3 = ie3.sub(io3.lanewise(VectorOperators.LSHL, SHIFT16)).sub(BLOCK_BIAS);
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
      FloatVector sE = s0.rearrange(EVEN, s1);
      FloatVector sO = s0.rearrange(ODD, s1);
      float d0 = xs[so + k];
      float d1 = xs[so + blocks + k];
      float d2 = xs[so + 2 * blocks + k];
      float d3 = xs[so + 3 * blocks + k];
      ce0 = ((FloatVector) ie0.convert(VectorOperators.I2F, 0)).fma(sE.mul(d0), ce0);
      co0 = ((FloatVector) io0.convert(VectorOperators.I2F, 0)).fma(sO.mul(d0), co0);
      ce1 = ((FloatVector) ie1.convert(VectorOperators.I2F, 0)).fma(sE.mul(d1), ce1);
      co1 = ((FloatVector) io1.convert(VectorOperators.I2F, 0)).fma(sO.mul(d1), co1);
      ce2 = ((FloatVector) ie2.convert(VectorOperators.I2F, 0)).fma(sE.mul(d2), ce2);
      co2 = ((FloatVector) io2.convert(VectorOperators.I2F, 0)).fma(sO.mul(d2), co2);
      ce3 = ((FloatVector) ie3.convert(VectorOperators.I2F, 0)).fma(sE.mul(d3), ce3);
      co3 = ((FloatVector) io3.convert(VectorOperators.I2F, 0)).fma(sO.mul(d3), co3);
    }
    ce0.rearrange(LOW, co0).intoArray(c, 0);
    ce0.rearrange(HIGH, co0).intoArray(c, F.length());
    System.arraycopy(c, 0, out, o, valid);
    ce1.rearrange(LOW, co1).intoArray(c, 0);
    ce1.rearrange(HIGH, co1).intoArray(c, F.length());
    System.arraycopy(c, 0, out, o + rows, valid);
    ce2.rearrange(LOW, co2).intoArray(c, 0);
    ce2.rearrange(HIGH, co2).intoArray(c, F.length());
    System.arraycopy(c, 0, out, o + 2 * rows, valid);
    ce3.rearrange(LOW, co3).intoArray(c, 0);
    ce3.rearrange(HIGH, co3).intoArray(c, F.length());
    System.arraycopy(c, 0, out, o + 3 * rows, valid);
  }
}
