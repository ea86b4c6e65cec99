package io.kvant.engine.tensor;

import static io.kvant.engine.tensor.DotKernel.F;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * What the ggml K-quant and 5-bit block types share: the packed 6-bit scale tables and the vector
 * step that turns a byte vector of small codes into scaled floats.
 *
 * <p>Design note: every K-quant decoder works on runs of 16 or 32 consecutive elements that share
 * one scale (and min). A run's codes are assembled in byte lanes (nibbles and bit planes are
 * unpacked with lane-wise {@code and} and unsigned shifts), widened to float lanes ({@code B2F})
 * and scaled with one multiply, then one subtract for the types with a min: the same two float
 * operations, in the same order, as the scalar decoder ({@code (d * sc) * q - dmin * m}, which is
 * also how ggml dequantizes), so vector and scalar results are bitwise equal.
 */
final class KQuantCodes {
  /** Elements per K-quant super-block. */
  static final int QK = 256;

  /** Byte lanes per step: 64 bits at least, else as many bytes as there are float lanes. */
  static final VectorSpecies<Byte> B =
      VectorSpecies.of(byte.class, VectorShape.forBitSize(Math.max(64, F.length() * 8)));

  /** Float vectors per byte vector. */
  static final int PARTS = B.length() / F.length();

  /** Whether a byte vector fits a 16-element run; on wider machines the scalar decoders run. */
  static final boolean VECTOR = B.length() <= 16;

  private KQuantCodes() {}

  /** Unsigned byte at {@code offset}. */
  static int u8(MemorySegment seg, long offset) {
    return seg.get(ValueLayout.JAVA_BYTE, offset) & 0xFF;
  }

  /**
   * Scale {@code j} (0..7) of a Q4_K/Q5_K 12-byte table at {@code at}: sub-blocks 0..3 keep their
   * 6-bit scale in the low bits of bytes 0..3; sub-blocks 4..7 keep the low 4 bits in the low
   * nibble of bytes 8..11 and the top 2 bits in the top bits of bytes 0..3.
   */
  static int scale6(MemorySegment seg, long at, int j) {
    if (j < 4) {
      return u8(seg, at + j) & 63;
    }
    return (u8(seg, at + j + 4) & 0xF) | ((u8(seg, at + j - 4) >>> 6) << 4);
  }

  /**
   * Min {@code j} (0..7) of a Q4_K/Q5_K 12-byte table: sub-blocks 0..3 in the low 6 bits of bytes
   * 4..7; sub-blocks 4..7 in the high nibble of bytes 8..11 plus the top 2 bits of bytes 4..7.
   */
  static int min6(MemorySegment seg, long at, int j) {
    if (j < 4) {
      return u8(seg, at + j + 4) & 63;
    }
    return (u8(seg, at + j + 4) >>> 4) | ((u8(seg, at + j) >>> 6) << 4);
  }

  /**
   * Signed scale {@code i} (0..15) of a Q3_K 12-byte table: the low 4 bits are nibble {@code i / 8}
   * of byte {@code i % 8}, the high 2 bits are bits {@code 2*(i/4)..} of byte {@code 8 + i % 4};
   * the 6-bit value is offset by 32.
   */
  static int q3Scale(MemorySegment seg, long at, int i) {
    int low = (u8(seg, at + i % 8) >>> (4 * (i / 8))) & 0xF;
    int high = (u8(seg, at + 8 + i % 4) >>> (2 * (i / 4))) & 3;
    return (low | (high << 4)) - 32;
  }

  /** Loads {@link #B} lanes of bytes at {@code offset}. */
  static ByteVector load(MemorySegment seg, long offset) {
    return ByteVector.fromMemorySegment(B, seg, offset, java.nio.ByteOrder.LITTLE_ENDIAN);
  }

  /** {@code dst[at + i] = scale * q[i]} for the {@link #B} lanes of {@code q}. */
  static void store(ByteVector q, float scale, float[] dst, int at) {
    FloatVector s = FloatVector.broadcast(F, scale);
    for (int p = 0; p < PARTS; p++) {
      ((FloatVector) q.convertShape(VectorOperators.B2F, F, p))
          .mul(s)
          .intoArray(dst, at + p * F.length());
    }
  }

  /** {@code dst[at + i] = scale * q[i] - min} for the {@link #B} lanes of {@code q}. */
  static void store(ByteVector q, float scale, float min, float[] dst, int at) {
    FloatVector s = FloatVector.broadcast(F, scale);
    FloatVector m = FloatVector.broadcast(F, min);
    for (int p = 0; p < PARTS; p++) {
      ((FloatVector) q.convertShape(VectorOperators.B2F, F, p))
          .mul(s)
          .sub(m)
          .intoArray(dst, at + p * F.length());
    }
  }

  /** Byte lanes shifted right (unsigned, within each byte) by {@code n} and masked. */
  static ByteVector bits(ByteVector v, int shift, int mask) {
    return v.lanewise(VectorOperators.LSHR, shift).and((byte) mask);
  }
}
