package io.kvant.engine.tensor.packed;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;

/**
 * 4-bit packed weights (Q4_0, symmetric I4), values {@code w} in {@code [-8, 7]} stored as the
 * nibble {@code u = w + 8} (Q4_0's own offset form), in column pairs: each 16-bit unit holds four
 * nibbles of one row, and a vector of units, viewed as ints, is {@code H = PANEL/2} rows times one
 * column pair per nibble position.
 *
 * <p>Layout: for panel {@code p} and block {@code k}, the block's {@code 16*PANEL} bytes start at
 * {@code (p*blocks + k)*16*PANEL}; they are eight runs of {@code 2*PANEL} bytes (one vector), run
 * {@code 2g + h} for column group {@code g} (columns {@code [8g, 8g+8)} of the block) and half
 * {@code h} (panel rows {@code [h*H, h*H + H)}). In a run, the 16-bit unit {@code 2i + s}
 * (little-endian) holds, in nibble {@code t} (bits {@code [4t, 4t+4)}), the weight of row {@code
 * h*H + i}, column {@code 8g + 2t + s}.
 *
 * <p>Kernel: a run loaded as shorts (no widening shuffle) shifted right logically by {@code 4t}
 * holds nibble {@code t} in its low 4 bits (three shifts per run: the first kernel, with signed
 * nibbles in bytes widened to shorts, spent three shifts and two shuffled broadcasts per 64
 * products). Lane {@code 2i + s} then holds column {@code 8g + 2t + s}, so the activation pair
 * {@code (x[8g+2t], x[8g+2t+1])} is one int broadcast (a load, no shuffle) and one 16-bit multiply
 * gives {@code H} rows times two columns. The nibbles above are not masked off: the per-panel
 * kernels multiply by {@link QuantizedInput#nibbleCodes}, the pairs less 16 times the pair before,
 * which cancels them in the sum modulo {@code 2^16} (one AND fewer per nibble, three per run; the
 * GEMM's tiles take {@link QuantizedInput#pairCodes} and masked nibbles). A block accumulates
 * {@code u * x} in 16-bit lanes, exact modulo {@code 2^16}, starting from {@code -8 * sum(x)} of
 * the block ({@link QuantizedInput#blockSums}) in the even lanes and 0 in the odd ones; at its end
 * the even and odd lanes of each int are added modulo {@code 2^16} ({@code (V + (V << 16)) >> 16},
 * arithmetic: three instructions), which is the exact {@code sum(w * x)} since it lies within
 * {@code 32 * 8 * 127 < 2^15} of zero, and that is widened to float once. The same runs, less 8,
 * are {@link NibbleGemm}'s pair tiles, nibble by nibble.
 */
final class PackedQ4 extends PackedMatrix {
  private static final int PAIRS = BLOCK / 2;

  /** Panel rows per half: the int lane count. */
  private static final int H = PANEL / 2;

  /** Bytes of one run (one short vector). */
  private static final int RUN = 2 * PANEL;

  // The nibble shifts as count vectors: C2 lowers a shift by a scalar constant to a count moved
  // into a vector register before every shift (two extra instructions per shift in the run loops,
  // seen in the JIT's code with gdb); a count vector is one per-lane shift with no setup.
  private static final ShortVector SHIFT4 = ShortVector.broadcast(S, (short) 4);
  private static final ShortVector SHIFT8 = ShortVector.broadcast(S, (short) 8);
  private static final ShortVector SHIFT12 = ShortVector.broadcast(S, (short) 12);

  /**
   * A block's accumulator start: {@code -8 * blockSum} (modulo {@code 2^16}) in each even 16-bit
   * lane, 0 in each odd one (the class note). Returns a vector but takes none, so a kernel that
   * does not inline it would box only this return, once per block.
   */
  static ShortVector offsets(int blockSum) {
    return IntVector.broadcast(I, (-8 * blockSum) & 0xFFFF).reinterpretAsShorts();
  }

  PackedQ4(BlockSource src, boolean half, CodeSlabs slabs) {
    super(src, (long) src.blocks() * PAIRS * PANEL, half, slabs);
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
          for (int j = 0; j < BLOCK; j++) {
            chunk[byteOf(i, j)] |= (byte) (((v[j] + 8) & 0xF) << shiftOf(j));
          }
          putScale(p, k, i, src.scale(r, k));
        }
        long base = ((long) p * blocks + k) * PAIRS * PANEL;
        MemorySegment.copy(chunk, 0, codes, ValueLayout.JAVA_BYTE, base, chunk.length);
      }
    }
  }

  /** Byte within a block's chunk holding panel row {@code i}, column {@code j}. */
  private static int byteOf(int i, int j) {
    int g = j / 8;
    int t = (j % 8) / 2;
    int s = j % 2;
    int h = i / H;
    int unit = 2 * (i % H) + s;
    return (2 * g + h) * RUN + 2 * unit + t / 2;
  }

  /** Bit offset of column {@code j}'s nibble within its byte. */
  private static int shiftOf(int j) {
    return ((j % 8) / 2 % 2) * 4;
  }

  @Override
  int weight(int p, int i, int k, int j) {
    byte b =
        codes.get(ValueLayout.JAVA_BYTE, ((long) p * blocks + k) * PAIRS * PANEL + byteOf(i, j));
    return ((b >> shiftOf(j)) & 0xF) - 8;
  }

  /** Run {@code r} of the block at byte {@code blockBase} as 16-bit units. */
  private ShortVector run(long blockBase, int r) {
    return ShortVector.fromMemorySegment(
        S, codes, blockBase + (long) r * RUN, ByteOrder.LITTLE_ENDIAN);
  }

  /** Nibble {@code t} of every unit of {@code w} as the signed weight ({@code nibble - 8}). */
  private static ShortVector nibble(ShortVector w, int t) {
    return w.lanewise(VectorOperators.LSHR, 4 * t).and((short) 0xF).sub((short) 8);
  }

  @Override
  void tiled(QuantizedInput x, float[] out, int panelStart, int panelEnd) {
    NibbleGemm.multiply(this, x, out, panelStart, panelEnd);
  }

  @Override
  void decodeTile(int p, int k0, int k1, float[] dst, int at) {
    for (int k = k0; k < k1; k++) {
      long base = ((long) p * blocks + k) * PAIRS * PANEL;
      int kd = at + (k - k0) * BLOCK * PANEL;
      for (int g = 0; g < 4; g++) {
        for (int h = 0; h < 2; h++) {
          ShortVector w = run(base, 2 * g + h);
          for (int t = 0; t < 4; t++) {
            IntVector v = nibble(w, t).reinterpretAsInts();
            IntVector even =
                v.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16);
            IntVector odd = v.lanewise(VectorOperators.ASHR, 16);
            int j = 8 * g + 2 * t;
            ((FloatVector) even.convert(VectorOperators.I2F, 0))
                .intoArray(dst, kd + j * PANEL + h * H);
            ((FloatVector) odd.convert(VectorOperators.I2F, 0))
                .intoArray(dst, kd + (j + 1) * PANEL + h * H);
          }
        }
      }
    }
  }

  /**
   * Blocks {@code [k0, k1)} of panel {@code p} for {@link NibbleGemm}: for chunk column pair {@code
   * c} and half {@code hh} (panel rows {@code [hh*H, hh*H + H)}, {@code H} the int lane count), int
   * lane {@code i} at {@code dst[at + (2c + hh)*H + i]} holds the row's weight of column {@code 2c}
   * in its low and of column {@code 2c+1} in its high 16 bits (each sign-extended): nibble {@code
   * t} of run {@code 2g + hh}, pair {@code c = 4g + t} of the block.
   */
  void decodePairTile(int p, int k0, int k1, int[] dst, int at) {
    for (int k = k0; k < k1; k++) {
      long base = ((long) p * blocks + k) * PAIRS * PANEL;
      int kd = at + (k - k0) * PAIRS * 2 * H;
      for (int g = 0; g < 4; g++) {
        for (int hh = 0; hh < 2; hh++) {
          ShortVector w = run(base, 2 * g + hh);
          for (int t = 0; t < 4; t++) {
            nibble(w, t).reinterpretAsInts().intoArray(dst, kd + (2 * (4 * g + t) + hh) * H);
          }
        }
      }
    }
  }

  @Override
  void panel(int p, QuantizedInput x, int b, float[] out, int o, int valid, float[] c) {
    // Nibble extraction, pair broadcasts and lane sums are spelled out here: C2 refused to
    // inline such helpers into a kernel this large ("callee uses too much stack"), and an
    // un-inlined vector helper boxes its vectors (2.3x slower, measured).
    int[] xp = x.nibbleCodes();
    int[] xsum = x.blockSums();
    float[] xs = x.scales();
    short[] hs = halfScales;
    float[] fs = scales;
    int half = cols / 2;
    int so = b * blocks;
    // The float sums in c, not in FloatVector locals: C2 kept two of those boxed across the block
    // loop, a float[16] allocated per block (perf/RESULTS.md, session 20).
    int h = F.length();
    java.util.Arrays.fill(c, 0, 2 * h, 0f);
    long base = (long) p * blocks * PAIRS * PANEL;
    int sb = p * blocks * PANEL;
    for (int k = 0; k < blocks; k++) {
      // Each accumulator starts at minus its row's offset, 8 * sum(x) of the block, in the even
      // lanes, so the even and odd lanes add up to the exact block sum (see the class note).
      ShortVector a00 = offsets(xsum[so + k]);
      ShortVector a01 = a00;
      long wo = base + (long) k * PAIRS * PANEL;
      int xk = b * half + k * PAIRS;
      for (int g = 0; g < 4; g++) {
        int xg = xk + 4 * g;
        ShortVector v00 = IntVector.broadcast(I, xp[xg]).reinterpretAsShorts();
        ShortVector v01 = IntVector.broadcast(I, xp[xg + 1]).reinterpretAsShorts();
        ShortVector v02 = IntVector.broadcast(I, xp[xg + 2]).reinterpretAsShorts();
        ShortVector v03 = IntVector.broadcast(I, xp[xg + 3]).reinterpretAsShorts();
        ShortVector w0 =
            ShortVector.fromMemorySegment(
                S, codes, wo + (long) (2 * g + 0) * RUN, ByteOrder.LITTLE_ENDIAN);
        ShortVector n00 = w0;
        ShortVector n01 = w0.lanewise(VectorOperators.LSHR, SHIFT4);
        ShortVector n02 = w0.lanewise(VectorOperators.LSHR, SHIFT8);
        ShortVector n03 = w0.lanewise(VectorOperators.LSHR, SHIFT12);
        a00 = a00.add(n00.mul(v00).add(n01.mul(v01))).add(n02.mul(v02).add(n03.mul(v03)));
        ShortVector w1 =
            ShortVector.fromMemorySegment(
                S, codes, wo + (long) (2 * g + 1) * RUN, ByteOrder.LITTLE_ENDIAN);
        ShortVector n10 = w1;
        ShortVector n11 = w1.lanewise(VectorOperators.LSHR, SHIFT4);
        ShortVector n12 = w1.lanewise(VectorOperators.LSHR, SHIFT8);
        ShortVector n13 = w1.lanewise(VectorOperators.LSHR, SHIFT12);
        a01 = a01.add(n10.mul(v00).add(n11.mul(v01))).add(n12.mul(v02).add(n13.mul(v03)));
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
      IntVector i00 = a00.reinterpretAsInts();
      i00 = i00.add(i00.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
      ((FloatVector) i00.convert(VectorOperators.I2F, 0))
          .fma(s0.mul(d0), FloatVector.fromArray(F, c, 0))
          .intoArray(c, 0);
      IntVector i01 = a01.reinterpretAsInts();
      i01 = i01.add(i01.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
      ((FloatVector) i01.convert(VectorOperators.I2F, 0))
          .fma(s1.mul(d0), FloatVector.fromArray(F, c, h))
          .intoArray(c, h);
    }
    System.arraycopy(c, 0, out, o, valid);
  }

  @Override
  void panel2(int p, QuantizedInput x, int b, float[] out, int o, int valid, float[] c) {
    // Nibble extraction, pair broadcasts and lane sums are spelled out here: C2 refused to
    // inline such helpers into a kernel this large ("callee uses too much stack"), and an
    // un-inlined vector helper boxes its vectors (2.3x slower, measured).
    int[] xp = x.nibbleCodes();
    int[] xsum = x.blockSums();
    float[] xs = x.scales();
    short[] hs = halfScales;
    float[] fs = scales;
    int half = cols / 2;
    int so = b * blocks;
    // The float sums in c, as in panel.
    int h = F.length();
    java.util.Arrays.fill(c, 0, 4 * h, 0f);
    long base = (long) p * blocks * PAIRS * PANEL;
    int sb = p * blocks * PANEL;
    for (int k = 0; k < blocks; k++) {
      // Each accumulator starts at minus its row's offset, 8 * sum(x) of the block, in the even
      // lanes, so the even and odd lanes add up to the exact block sum (see the class note).
      ShortVector a00 = offsets(xsum[so + k]);
      ShortVector a01 = a00;
      ShortVector a10 = offsets(xsum[so + 1 * blocks + k]);
      ShortVector a11 = a10;
      long wo = base + (long) k * PAIRS * PANEL;
      int xk = b * half + k * PAIRS;
      for (int g = 0; g < 4; g++) {
        int xg = xk + 4 * g;
        ShortVector v00 = IntVector.broadcast(I, xp[xg]).reinterpretAsShorts();
        ShortVector v01 = IntVector.broadcast(I, xp[xg + 1]).reinterpretAsShorts();
        ShortVector v02 = IntVector.broadcast(I, xp[xg + 2]).reinterpretAsShorts();
        ShortVector v03 = IntVector.broadcast(I, xp[xg + 3]).reinterpretAsShorts();
        ShortVector v10 = IntVector.broadcast(I, xp[xg + half]).reinterpretAsShorts();
        ShortVector v11 = IntVector.broadcast(I, xp[xg + half + 1]).reinterpretAsShorts();
        ShortVector v12 = IntVector.broadcast(I, xp[xg + half + 2]).reinterpretAsShorts();
        ShortVector v13 = IntVector.broadcast(I, xp[xg + half + 3]).reinterpretAsShorts();
        ShortVector w0 =
            ShortVector.fromMemorySegment(
                S, codes, wo + (long) (2 * g + 0) * RUN, ByteOrder.LITTLE_ENDIAN);
        ShortVector n00 = w0;
        ShortVector n01 = w0.lanewise(VectorOperators.LSHR, SHIFT4);
        ShortVector n02 = w0.lanewise(VectorOperators.LSHR, SHIFT8);
        ShortVector n03 = w0.lanewise(VectorOperators.LSHR, SHIFT12);
        a00 = a00.add(n00.mul(v00).add(n01.mul(v01))).add(n02.mul(v02).add(n03.mul(v03)));
        a10 = a10.add(n00.mul(v10).add(n01.mul(v11))).add(n02.mul(v12).add(n03.mul(v13)));
        ShortVector w1 =
            ShortVector.fromMemorySegment(
                S, codes, wo + (long) (2 * g + 1) * RUN, ByteOrder.LITTLE_ENDIAN);
        ShortVector n10 = w1;
        ShortVector n11 = w1.lanewise(VectorOperators.LSHR, SHIFT4);
        ShortVector n12 = w1.lanewise(VectorOperators.LSHR, SHIFT8);
        ShortVector n13 = w1.lanewise(VectorOperators.LSHR, SHIFT12);
        a01 = a01.add(n10.mul(v00).add(n11.mul(v01))).add(n12.mul(v02).add(n13.mul(v03)));
        a11 = a11.add(n10.mul(v10).add(n11.mul(v11))).add(n12.mul(v12).add(n13.mul(v13)));
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
      IntVector i00 = a00.reinterpretAsInts();
      i00 = i00.add(i00.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
      ((FloatVector) i00.convert(VectorOperators.I2F, 0))
          .fma(s0.mul(d0), FloatVector.fromArray(F, c, 0))
          .intoArray(c, 0);
      IntVector i01 = a01.reinterpretAsInts();
      i01 = i01.add(i01.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
      ((FloatVector) i01.convert(VectorOperators.I2F, 0))
          .fma(s1.mul(d0), FloatVector.fromArray(F, c, h))
          .intoArray(c, h);
      float d1 = xs[so + 1 * blocks + k];
      IntVector i10 = a10.reinterpretAsInts();
      i10 = i10.add(i10.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
      ((FloatVector) i10.convert(VectorOperators.I2F, 0))
          .fma(s0.mul(d1), FloatVector.fromArray(F, c, 2 * h))
          .intoArray(c, 2 * h);
      IntVector i11 = a11.reinterpretAsInts();
      i11 = i11.add(i11.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
      ((FloatVector) i11.convert(VectorOperators.I2F, 0))
          .fma(s1.mul(d1), FloatVector.fromArray(F, c, 3 * h))
          .intoArray(c, 3 * h);
    }
    System.arraycopy(c, 0, out, o, valid);
    System.arraycopy(c, 2 * h, out, o + rows, valid);
  }

  @Override
  void panel4(int p, QuantizedInput x, int b, float[] out, int o, int valid, float[] c) {
    // Nibble extraction, pair broadcasts and lane sums are spelled out here: C2 refused to
    // inline such helpers into a kernel this large ("callee uses too much stack"), and an
    // un-inlined vector helper boxes its vectors (2.3x slower, measured).
    int[] xp = x.nibbleCodes();
    int[] xsum = x.blockSums();
    float[] xs = x.scales();
    short[] hs = halfScales;
    float[] fs = scales;
    int half = cols / 2;
    int so = b * blocks;
    // The float sums in c, as in panel.
    int h = F.length();
    java.util.Arrays.fill(c, 0, 8 * h, 0f);
    long base = (long) p * blocks * PAIRS * PANEL;
    int sb = p * blocks * PANEL;
    for (int k = 0; k < blocks; k++) {
      // Each accumulator starts at minus its row's offset, 8 * sum(x) of the block, in the even
      // lanes, so the even and odd lanes add up to the exact block sum (see the class note).
      ShortVector a00 = offsets(xsum[so + k]);
      ShortVector a01 = a00;
      ShortVector a10 = offsets(xsum[so + 1 * blocks + k]);
      ShortVector a11 = a10;
      ShortVector a20 = offsets(xsum[so + 2 * blocks + k]);
      ShortVector a21 = a20;
      ShortVector a30 = offsets(xsum[so + 3 * blocks + k]);
      ShortVector a31 = a30;
      long wo = base + (long) k * PAIRS * PANEL;
      int xk = b * half + k * PAIRS;
      for (int g = 0; g < 4; g++) {
        int xg = xk + 4 * g;
        ShortVector v00 = IntVector.broadcast(I, xp[xg]).reinterpretAsShorts();
        ShortVector v01 = IntVector.broadcast(I, xp[xg + 1]).reinterpretAsShorts();
        ShortVector v02 = IntVector.broadcast(I, xp[xg + 2]).reinterpretAsShorts();
        ShortVector v03 = IntVector.broadcast(I, xp[xg + 3]).reinterpretAsShorts();
        ShortVector v10 = IntVector.broadcast(I, xp[xg + half]).reinterpretAsShorts();
        ShortVector v11 = IntVector.broadcast(I, xp[xg + half + 1]).reinterpretAsShorts();
        ShortVector v12 = IntVector.broadcast(I, xp[xg + half + 2]).reinterpretAsShorts();
        ShortVector v13 = IntVector.broadcast(I, xp[xg + half + 3]).reinterpretAsShorts();
        ShortVector v20 = IntVector.broadcast(I, xp[xg + 2 * half]).reinterpretAsShorts();
        ShortVector v21 = IntVector.broadcast(I, xp[xg + 2 * half + 1]).reinterpretAsShorts();
        ShortVector v22 = IntVector.broadcast(I, xp[xg + 2 * half + 2]).reinterpretAsShorts();
        ShortVector v23 = IntVector.broadcast(I, xp[xg + 2 * half + 3]).reinterpretAsShorts();
        ShortVector v30 = IntVector.broadcast(I, xp[xg + 3 * half]).reinterpretAsShorts();
        ShortVector v31 = IntVector.broadcast(I, xp[xg + 3 * half + 1]).reinterpretAsShorts();
        ShortVector v32 = IntVector.broadcast(I, xp[xg + 3 * half + 2]).reinterpretAsShorts();
        ShortVector v33 = IntVector.broadcast(I, xp[xg + 3 * half + 3]).reinterpretAsShorts();
        ShortVector w0 =
            ShortVector.fromMemorySegment(
                S, codes, wo + (long) (2 * g + 0) * RUN, ByteOrder.LITTLE_ENDIAN);
        ShortVector n00 = w0;
        ShortVector n01 = w0.lanewise(VectorOperators.LSHR, SHIFT4);
        ShortVector n02 = w0.lanewise(VectorOperators.LSHR, SHIFT8);
        ShortVector n03 = w0.lanewise(VectorOperators.LSHR, SHIFT12);
        a00 = a00.add(n00.mul(v00).add(n01.mul(v01))).add(n02.mul(v02).add(n03.mul(v03)));
        a10 = a10.add(n00.mul(v10).add(n01.mul(v11))).add(n02.mul(v12).add(n03.mul(v13)));
        a20 = a20.add(n00.mul(v20).add(n01.mul(v21))).add(n02.mul(v22).add(n03.mul(v23)));
        a30 = a30.add(n00.mul(v30).add(n01.mul(v31))).add(n02.mul(v32).add(n03.mul(v33)));
        ShortVector w1 =
            ShortVector.fromMemorySegment(
                S, codes, wo + (long) (2 * g + 1) * RUN, ByteOrder.LITTLE_ENDIAN);
        ShortVector n10 = w1;
        ShortVector n11 = w1.lanewise(VectorOperators.LSHR, SHIFT4);
        ShortVector n12 = w1.lanewise(VectorOperators.LSHR, SHIFT8);
        ShortVector n13 = w1.lanewise(VectorOperators.LSHR, SHIFT12);
        a01 = a01.add(n10.mul(v00).add(n11.mul(v01))).add(n12.mul(v02).add(n13.mul(v03)));
        a11 = a11.add(n10.mul(v10).add(n11.mul(v11))).add(n12.mul(v12).add(n13.mul(v13)));
        a21 = a21.add(n10.mul(v20).add(n11.mul(v21))).add(n12.mul(v22).add(n13.mul(v23)));
        a31 = a31.add(n10.mul(v30).add(n11.mul(v31))).add(n12.mul(v32).add(n13.mul(v33)));
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
      IntVector i00 = a00.reinterpretAsInts();
      i00 = i00.add(i00.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
      ((FloatVector) i00.convert(VectorOperators.I2F, 0))
          .fma(s0.mul(d0), FloatVector.fromArray(F, c, 0))
          .intoArray(c, 0);
      IntVector i01 = a01.reinterpretAsInts();
      i01 = i01.add(i01.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
      ((FloatVector) i01.convert(VectorOperators.I2F, 0))
          .fma(s1.mul(d0), FloatVector.fromArray(F, c, h))
          .intoArray(c, h);
      float d1 = xs[so + 1 * blocks + k];
      IntVector i10 = a10.reinterpretAsInts();
      i10 = i10.add(i10.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
      ((FloatVector) i10.convert(VectorOperators.I2F, 0))
          .fma(s0.mul(d1), FloatVector.fromArray(F, c, 2 * h))
          .intoArray(c, 2 * h);
      IntVector i11 = a11.reinterpretAsInts();
      i11 = i11.add(i11.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
      ((FloatVector) i11.convert(VectorOperators.I2F, 0))
          .fma(s1.mul(d1), FloatVector.fromArray(F, c, 3 * h))
          .intoArray(c, 3 * h);
      float d2 = xs[so + 2 * blocks + k];
      IntVector i20 = a20.reinterpretAsInts();
      i20 = i20.add(i20.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
      ((FloatVector) i20.convert(VectorOperators.I2F, 0))
          .fma(s0.mul(d2), FloatVector.fromArray(F, c, 4 * h))
          .intoArray(c, 4 * h);
      IntVector i21 = a21.reinterpretAsInts();
      i21 = i21.add(i21.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
      ((FloatVector) i21.convert(VectorOperators.I2F, 0))
          .fma(s1.mul(d2), FloatVector.fromArray(F, c, 5 * h))
          .intoArray(c, 5 * h);
      float d3 = xs[so + 3 * blocks + k];
      IntVector i30 = a30.reinterpretAsInts();
      i30 = i30.add(i30.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
      ((FloatVector) i30.convert(VectorOperators.I2F, 0))
          .fma(s0.mul(d3), FloatVector.fromArray(F, c, 6 * h))
          .intoArray(c, 6 * h);
      IntVector i31 = a31.reinterpretAsInts();
      i31 = i31.add(i31.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
      ((FloatVector) i31.convert(VectorOperators.I2F, 0))
          .fma(s1.mul(d3), FloatVector.fromArray(F, c, 7 * h))
          .intoArray(c, 7 * h);
    }
    System.arraycopy(c, 0, out, o, valid);
    System.arraycopy(c, 2 * h, out, o + rows, valid);
    System.arraycopy(c, 4 * h, out, o + 2 * rows, valid);
    System.arraycopy(c, 6 * h, out, o + 3 * rows, valid);
  }

  /**
   * One input row: panels four at a time ({@link #panelQuad}) while four are full, then two ({@link
   * #panelPair}) while both are. Measured on weights streamed from DRAM (perf/RESULTS.md, "CPU
   * integer path, session 8"): one panel per pass read them 10-30% slower than the byte-per-row
   * layout before it did, although it was faster on weights in cache; two panels per pass (two
   * streams of weights, each activation broadcast used for four runs) brought it close to that
   * layout's speed. At one thread the pass waits on its weight loads (session 30's profile), so
   * four streams per pass (more loads in flight) decode SmolLM2 Q4_0 faster still (session 30).
   */
  @Override
  int pairs(QuantizedInput x, float[] out, int panelStart, int panelEnd, float[] c) {
    int p = panelStart;
    for (; p + 4 <= panelEnd && (p + 4) * PANEL <= rows; p += 4) {
      panelQuad(p, x, out, c);
    }
    for (; p + 2 <= panelEnd && (p + 2) * PANEL <= rows; p += 2) {
      panelPair(p, x, out, c);
    }
    return p;
  }

  /**
   * {@link #panelPair} over four panels {@code p .. p+3} at once, all full: four streams of
   * weights, each activation broadcast used for eight runs; each row's result is bitwise what
   * {@link #panel} gives it (same operations, same order). {@code c} is scratch of at least {@code
   * 8 * F.length()} floats.
   */
  void panelQuad(int p, QuantizedInput x, float[] out, float[] c) {
    // Each panel's runs, scales and sums spelled out, as in panel: C2 does not inline vector
    // helpers into a kernel this large, and an un-inlined one boxes its vectors.
    int[] xp = x.nibbleCodes();
    int[] xsum = x.blockSums();
    float[] xs = x.scales();
    short[] hs = halfScales;
    float[] fs = scales;
    // The float sums in c (at least 8 * F.length()), as in panel.
    int h = F.length();
    java.util.Arrays.fill(c, 0, 8 * h, 0f);
    long step = (long) blocks * PAIRS * PANEL;
    long base0 = (long) p * step;
    long base1 = base0 + step;
    long base2 = base1 + step;
    long base3 = base2 + step;
    int sb0 = p * blocks * PANEL;
    int sb1 = sb0 + blocks * PANEL;
    int sb2 = sb1 + blocks * PANEL;
    int sb3 = sb2 + blocks * PANEL;
    for (int k = 0; k < blocks; k++) {
      // Each accumulator starts at minus its row's offset, 8 * sum(x) of the block, in the even
      // lanes, so the even and odd lanes add up to the exact block sum (see the class note).
      ShortVector a00 = offsets(xsum[k]);
      ShortVector a01 = a00;
      ShortVector a10 = a00;
      ShortVector a11 = a00;
      ShortVector a20 = a00;
      ShortVector a21 = a00;
      ShortVector a30 = a00;
      ShortVector a31 = a00;
      long ko = (long) k * PAIRS * PANEL;
      int xk = k * PAIRS;
      for (int g = 0; g < 4; g++) {
        int xg = xk + 4 * g;
        ShortVector v0 = IntVector.broadcast(I, xp[xg]).reinterpretAsShorts();
        ShortVector v1 = IntVector.broadcast(I, xp[xg + 1]).reinterpretAsShorts();
        ShortVector v2 = IntVector.broadcast(I, xp[xg + 2]).reinterpretAsShorts();
        ShortVector v3 = IntVector.broadcast(I, xp[xg + 3]).reinterpretAsShorts();
        ShortVector w00 =
            ShortVector.fromMemorySegment(
                S, codes, base0 + ko + (long) (2 * g + 0) * RUN, ByteOrder.LITTLE_ENDIAN);
        a00 =
            a00.add(w00.mul(v0).add(w00.lanewise(VectorOperators.LSHR, SHIFT4).mul(v1)))
                .add(
                    w00.lanewise(VectorOperators.LSHR, SHIFT8)
                        .mul(v2)
                        .add(w00.lanewise(VectorOperators.LSHR, SHIFT12).mul(v3)));
        ShortVector w10 =
            ShortVector.fromMemorySegment(
                S, codes, base1 + ko + (long) (2 * g + 0) * RUN, ByteOrder.LITTLE_ENDIAN);
        a10 =
            a10.add(w10.mul(v0).add(w10.lanewise(VectorOperators.LSHR, SHIFT4).mul(v1)))
                .add(
                    w10.lanewise(VectorOperators.LSHR, SHIFT8)
                        .mul(v2)
                        .add(w10.lanewise(VectorOperators.LSHR, SHIFT12).mul(v3)));
        ShortVector w20 =
            ShortVector.fromMemorySegment(
                S, codes, base2 + ko + (long) (2 * g + 0) * RUN, ByteOrder.LITTLE_ENDIAN);
        a20 =
            a20.add(w20.mul(v0).add(w20.lanewise(VectorOperators.LSHR, SHIFT4).mul(v1)))
                .add(
                    w20.lanewise(VectorOperators.LSHR, SHIFT8)
                        .mul(v2)
                        .add(w20.lanewise(VectorOperators.LSHR, SHIFT12).mul(v3)));
        ShortVector w30 =
            ShortVector.fromMemorySegment(
                S, codes, base3 + ko + (long) (2 * g + 0) * RUN, ByteOrder.LITTLE_ENDIAN);
        a30 =
            a30.add(w30.mul(v0).add(w30.lanewise(VectorOperators.LSHR, SHIFT4).mul(v1)))
                .add(
                    w30.lanewise(VectorOperators.LSHR, SHIFT8)
                        .mul(v2)
                        .add(w30.lanewise(VectorOperators.LSHR, SHIFT12).mul(v3)));
        ShortVector w01 =
            ShortVector.fromMemorySegment(
                S, codes, base0 + ko + (long) (2 * g + 1) * RUN, ByteOrder.LITTLE_ENDIAN);
        a01 =
            a01.add(w01.mul(v0).add(w01.lanewise(VectorOperators.LSHR, SHIFT4).mul(v1)))
                .add(
                    w01.lanewise(VectorOperators.LSHR, SHIFT8)
                        .mul(v2)
                        .add(w01.lanewise(VectorOperators.LSHR, SHIFT12).mul(v3)));
        ShortVector w11 =
            ShortVector.fromMemorySegment(
                S, codes, base1 + ko + (long) (2 * g + 1) * RUN, ByteOrder.LITTLE_ENDIAN);
        a11 =
            a11.add(w11.mul(v0).add(w11.lanewise(VectorOperators.LSHR, SHIFT4).mul(v1)))
                .add(
                    w11.lanewise(VectorOperators.LSHR, SHIFT8)
                        .mul(v2)
                        .add(w11.lanewise(VectorOperators.LSHR, SHIFT12).mul(v3)));
        ShortVector w21 =
            ShortVector.fromMemorySegment(
                S, codes, base2 + ko + (long) (2 * g + 1) * RUN, ByteOrder.LITTLE_ENDIAN);
        a21 =
            a21.add(w21.mul(v0).add(w21.lanewise(VectorOperators.LSHR, SHIFT4).mul(v1)))
                .add(
                    w21.lanewise(VectorOperators.LSHR, SHIFT8)
                        .mul(v2)
                        .add(w21.lanewise(VectorOperators.LSHR, SHIFT12).mul(v3)));
        ShortVector w31 =
            ShortVector.fromMemorySegment(
                S, codes, base3 + ko + (long) (2 * g + 1) * RUN, ByteOrder.LITTLE_ENDIAN);
        a31 =
            a31.add(w31.mul(v0).add(w31.lanewise(VectorOperators.LSHR, SHIFT4).mul(v1)))
                .add(
                    w31.lanewise(VectorOperators.LSHR, SHIFT8)
                        .mul(v2)
                        .add(w31.lanewise(VectorOperators.LSHR, SHIFT12).mul(v3)));
      }
      float d = xs[k];
      FloatVector t00;
      FloatVector t01;
      if (hs != null) {
        IntVector hv = ShortVector.fromArray(S, hs, sb0 + k * PANEL).reinterpretAsInts();
        t00 =
            hv.lanewise(VectorOperators.LSHL, 16)
                .lanewise(VectorOperators.ASHR, 3)
                .and(F16_MASK)
                .reinterpretAsFloats()
                .mul(F16_SCALE);
        t01 =
            hv.lanewise(VectorOperators.ASHR, 3).and(F16_MASK).reinterpretAsFloats().mul(F16_SCALE);
      } else {
        t00 = FloatVector.fromArray(F, fs, sb0 + k * PANEL);
        t01 = FloatVector.fromArray(F, fs, sb0 + k * PANEL + F.length());
      }
      IntVector i00 = a00.reinterpretAsInts();
      i00 = i00.add(i00.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
      ((FloatVector) i00.convert(VectorOperators.I2F, 0))
          .fma(t00.mul(d), FloatVector.fromArray(F, c, 0))
          .intoArray(c, 0);
      IntVector i01 = a01.reinterpretAsInts();
      i01 = i01.add(i01.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
      ((FloatVector) i01.convert(VectorOperators.I2F, 0))
          .fma(t01.mul(d), FloatVector.fromArray(F, c, h))
          .intoArray(c, h);
      FloatVector t10;
      FloatVector t11;
      if (hs != null) {
        IntVector hv = ShortVector.fromArray(S, hs, sb1 + k * PANEL).reinterpretAsInts();
        t10 =
            hv.lanewise(VectorOperators.LSHL, 16)
                .lanewise(VectorOperators.ASHR, 3)
                .and(F16_MASK)
                .reinterpretAsFloats()
                .mul(F16_SCALE);
        t11 =
            hv.lanewise(VectorOperators.ASHR, 3).and(F16_MASK).reinterpretAsFloats().mul(F16_SCALE);
      } else {
        t10 = FloatVector.fromArray(F, fs, sb1 + k * PANEL);
        t11 = FloatVector.fromArray(F, fs, sb1 + k * PANEL + F.length());
      }
      IntVector i10 = a10.reinterpretAsInts();
      i10 = i10.add(i10.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
      ((FloatVector) i10.convert(VectorOperators.I2F, 0))
          .fma(t10.mul(d), FloatVector.fromArray(F, c, 2 * h))
          .intoArray(c, 2 * h);
      IntVector i11 = a11.reinterpretAsInts();
      i11 = i11.add(i11.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
      ((FloatVector) i11.convert(VectorOperators.I2F, 0))
          .fma(t11.mul(d), FloatVector.fromArray(F, c, 3 * h))
          .intoArray(c, 3 * h);
      FloatVector t20;
      FloatVector t21;
      if (hs != null) {
        IntVector hv = ShortVector.fromArray(S, hs, sb2 + k * PANEL).reinterpretAsInts();
        t20 =
            hv.lanewise(VectorOperators.LSHL, 16)
                .lanewise(VectorOperators.ASHR, 3)
                .and(F16_MASK)
                .reinterpretAsFloats()
                .mul(F16_SCALE);
        t21 =
            hv.lanewise(VectorOperators.ASHR, 3).and(F16_MASK).reinterpretAsFloats().mul(F16_SCALE);
      } else {
        t20 = FloatVector.fromArray(F, fs, sb2 + k * PANEL);
        t21 = FloatVector.fromArray(F, fs, sb2 + k * PANEL + F.length());
      }
      IntVector i20 = a20.reinterpretAsInts();
      i20 = i20.add(i20.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
      ((FloatVector) i20.convert(VectorOperators.I2F, 0))
          .fma(t20.mul(d), FloatVector.fromArray(F, c, 4 * h))
          .intoArray(c, 4 * h);
      IntVector i21 = a21.reinterpretAsInts();
      i21 = i21.add(i21.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
      ((FloatVector) i21.convert(VectorOperators.I2F, 0))
          .fma(t21.mul(d), FloatVector.fromArray(F, c, 5 * h))
          .intoArray(c, 5 * h);
      FloatVector t30;
      FloatVector t31;
      if (hs != null) {
        IntVector hv = ShortVector.fromArray(S, hs, sb3 + k * PANEL).reinterpretAsInts();
        t30 =
            hv.lanewise(VectorOperators.LSHL, 16)
                .lanewise(VectorOperators.ASHR, 3)
                .and(F16_MASK)
                .reinterpretAsFloats()
                .mul(F16_SCALE);
        t31 =
            hv.lanewise(VectorOperators.ASHR, 3).and(F16_MASK).reinterpretAsFloats().mul(F16_SCALE);
      } else {
        t30 = FloatVector.fromArray(F, fs, sb3 + k * PANEL);
        t31 = FloatVector.fromArray(F, fs, sb3 + k * PANEL + F.length());
      }
      IntVector i30 = a30.reinterpretAsInts();
      i30 = i30.add(i30.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
      ((FloatVector) i30.convert(VectorOperators.I2F, 0))
          .fma(t30.mul(d), FloatVector.fromArray(F, c, 6 * h))
          .intoArray(c, 6 * h);
      IntVector i31 = a31.reinterpretAsInts();
      i31 = i31.add(i31.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
      ((FloatVector) i31.convert(VectorOperators.I2F, 0))
          .fma(t31.mul(d), FloatVector.fromArray(F, c, 7 * h))
          .intoArray(c, 7 * h);
    }
    System.arraycopy(c, 0, out, p * PANEL, PANEL);
    System.arraycopy(c, 2 * h, out, (p + 1) * PANEL, PANEL);
    System.arraycopy(c, 4 * h, out, (p + 2) * PANEL, PANEL);
    System.arraycopy(c, 6 * h, out, (p + 3) * PANEL, PANEL);
  }

  /**
   * {@link #panel} for input row 0 against panels {@code p} and {@code p+1} at once, both full;
   * each row's result is bitwise what {@link #panel} gives it (same operations, same order). {@code
   * c} is scratch of at least {@code 4 * F.length()} floats.
   */
  void panelPair(int p, QuantizedInput x, float[] out, float[] c) {
    int[] xp = x.nibbleCodes();
    int[] xsum = x.blockSums();
    float[] xs = x.scales();
    short[] hs = halfScales;
    float[] fs = scales;
    // The float sums in c (at least 4 * F.length()), as in panel.
    int h = F.length();
    java.util.Arrays.fill(c, 0, 4 * h, 0f);
    long base = (long) p * blocks * PAIRS * PANEL;
    long next = base + (long) blocks * PAIRS * PANEL;
    int sb = p * blocks * PANEL;
    int sn = sb + blocks * PANEL;
    for (int k = 0; k < blocks; k++) {
      // Each accumulator starts at minus its row's offset, 8 * sum(x) of the block, in the even
      // lanes, so the even and odd lanes add up to the exact block sum (see the class note).
      ShortVector a00 = offsets(xsum[k]);
      ShortVector a01 = a00;
      ShortVector a10 = a00;
      ShortVector a11 = a00;
      long wo = base + (long) k * PAIRS * PANEL;
      long wn = next + (long) k * PAIRS * PANEL;
      int xk = k * PAIRS;
      for (int g = 0; g < 4; g++) {
        int xg = xk + 4 * g;
        ShortVector v0 = IntVector.broadcast(I, xp[xg]).reinterpretAsShorts();
        ShortVector v1 = IntVector.broadcast(I, xp[xg + 1]).reinterpretAsShorts();
        ShortVector v2 = IntVector.broadcast(I, xp[xg + 2]).reinterpretAsShorts();
        ShortVector v3 = IntVector.broadcast(I, xp[xg + 3]).reinterpretAsShorts();
        ShortVector wa00 =
            ShortVector.fromMemorySegment(
                S, codes, wo + (long) (2 * g + 0) * RUN, ByteOrder.LITTLE_ENDIAN);
        a00 =
            a00.add(wa00.mul(v0).add(wa00.lanewise(VectorOperators.LSHR, SHIFT4).mul(v1)))
                .add(
                    wa00.lanewise(VectorOperators.LSHR, SHIFT8)
                        .mul(v2)
                        .add(wa00.lanewise(VectorOperators.LSHR, SHIFT12).mul(v3)));
        ShortVector wa10 =
            ShortVector.fromMemorySegment(
                S, codes, wn + (long) (2 * g + 0) * RUN, ByteOrder.LITTLE_ENDIAN);
        a10 =
            a10.add(wa10.mul(v0).add(wa10.lanewise(VectorOperators.LSHR, SHIFT4).mul(v1)))
                .add(
                    wa10.lanewise(VectorOperators.LSHR, SHIFT8)
                        .mul(v2)
                        .add(wa10.lanewise(VectorOperators.LSHR, SHIFT12).mul(v3)));
        ShortVector wa01 =
            ShortVector.fromMemorySegment(
                S, codes, wo + (long) (2 * g + 1) * RUN, ByteOrder.LITTLE_ENDIAN);
        a01 =
            a01.add(wa01.mul(v0).add(wa01.lanewise(VectorOperators.LSHR, SHIFT4).mul(v1)))
                .add(
                    wa01.lanewise(VectorOperators.LSHR, SHIFT8)
                        .mul(v2)
                        .add(wa01.lanewise(VectorOperators.LSHR, SHIFT12).mul(v3)));
        ShortVector wa11 =
            ShortVector.fromMemorySegment(
                S, codes, wn + (long) (2 * g + 1) * RUN, ByteOrder.LITTLE_ENDIAN);
        a11 =
            a11.add(wa11.mul(v0).add(wa11.lanewise(VectorOperators.LSHR, SHIFT4).mul(v1)))
                .add(
                    wa11.lanewise(VectorOperators.LSHR, SHIFT8)
                        .mul(v2)
                        .add(wa11.lanewise(VectorOperators.LSHR, SHIFT12).mul(v3)));
      }
      FloatVector t00;
      FloatVector t01;
      if (hs != null) {
        IntVector hv = ShortVector.fromArray(S, hs, sb + k * PANEL).reinterpretAsInts();
        t00 =
            hv.lanewise(VectorOperators.LSHL, 16)
                .lanewise(VectorOperators.ASHR, 3)
                .and(F16_MASK)
                .reinterpretAsFloats()
                .mul(F16_SCALE);
        t01 =
            hv.lanewise(VectorOperators.ASHR, 3).and(F16_MASK).reinterpretAsFloats().mul(F16_SCALE);
      } else {
        t00 = FloatVector.fromArray(F, fs, sb + k * PANEL);
        t01 = FloatVector.fromArray(F, fs, sb + k * PANEL + F.length());
      }
      FloatVector t10;
      FloatVector t11;
      if (hs != null) {
        IntVector hv = ShortVector.fromArray(S, hs, sn + k * PANEL).reinterpretAsInts();
        t10 =
            hv.lanewise(VectorOperators.LSHL, 16)
                .lanewise(VectorOperators.ASHR, 3)
                .and(F16_MASK)
                .reinterpretAsFloats()
                .mul(F16_SCALE);
        t11 =
            hv.lanewise(VectorOperators.ASHR, 3).and(F16_MASK).reinterpretAsFloats().mul(F16_SCALE);
      } else {
        t10 = FloatVector.fromArray(F, fs, sn + k * PANEL);
        t11 = FloatVector.fromArray(F, fs, sn + k * PANEL + F.length());
      }
      float d = xs[k];
      IntVector ia00 = a00.reinterpretAsInts();
      ia00 = ia00.add(ia00.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
      ((FloatVector) ia00.convert(VectorOperators.I2F, 0))
          .fma(t00.mul(d), FloatVector.fromArray(F, c, 0))
          .intoArray(c, 0);
      IntVector ia01 = a01.reinterpretAsInts();
      ia01 = ia01.add(ia01.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
      ((FloatVector) ia01.convert(VectorOperators.I2F, 0))
          .fma(t01.mul(d), FloatVector.fromArray(F, c, h))
          .intoArray(c, h);
      IntVector ia10 = a10.reinterpretAsInts();
      ia10 = ia10.add(ia10.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
      ((FloatVector) ia10.convert(VectorOperators.I2F, 0))
          .fma(t10.mul(d), FloatVector.fromArray(F, c, 2 * h))
          .intoArray(c, 2 * h);
      IntVector ia11 = a11.reinterpretAsInts();
      ia11 = ia11.add(ia11.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
      ((FloatVector) ia11.convert(VectorOperators.I2F, 0))
          .fma(t11.mul(d), FloatVector.fromArray(F, c, 3 * h))
          .intoArray(c, 3 * h);
    }
    System.arraycopy(c, 0, out, p * PANEL, PANEL);
    System.arraycopy(c, 2 * h, out, (p + 1) * PANEL, PANEL);
  }
}
