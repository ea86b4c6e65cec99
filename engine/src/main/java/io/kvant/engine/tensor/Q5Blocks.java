package io.kvant.engine.tensor;

import static io.kvant.engine.tensor.DotKernel.F;
import static io.kvant.engine.tensor.KQuantCodes.B;
import static io.kvant.engine.tensor.KQuantCodes.PARTS;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The 32-value block shared by {@link DType#Q5_0} and {@link DType#Q5_1}: a little-endian uint32
 * {@code qh} whose bit {@code i} is the 5th bit of element {@code i}, then 16 bytes whose low
 * nibbles are elements 0..15 and high nibbles elements 16..31.
 *
 * <p>Design note: the high bits come from one 32-bit word, so the vector decoder works in int
 * lanes: the word is broadcast and shifted right by each lane's element index (a constant iota),
 * masked, moved to bit 4 and or-ed with the nibbles widened from byte lanes ({@code B2I}); then
 * {@code I2F}, one multiply and, for Q5_1, one add, as in the scalar decoder.
 */
final class Q5Blocks {
  private static final VectorSpecies<Integer> I = F.withLanes(int.class);
  private static final int[] IOTA = new int[64];
  private static final ValueLayout.OfInt INT_LE =
      ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  static {
    for (int i = 0; i < IOTA.length; i++) {
      IOTA[i] = i;
    }
  }

  private Q5Blocks() {}

  /** The unsigned 5-bit code of element {@code j} of the block at {@code qh} (codes follow it). */
  static int code(MemorySegment seg, long qh, int j) {
    int packed = KQuantCodes.u8(seg, qh + 4 + j % 16);
    int low = j < 16 ? packed & 0xF : packed >>> 4;
    int high = (seg.get(INT_LE, qh) >>> j) & 1;
    return low | (high << 4);
  }

  /**
   * Writes {@code dst[o + j] = d * (code(j) - bias) + m} for the 32 elements of the block at {@code
   * qh}; with {@code addMin} false the {@code + m} step is skipped (Q5_0).
   */
  static void decode(
      MemorySegment seg, long qh, int bias, float d, float m, boolean addMin, float[] dst, int o) {
    if (!KQuantCodes.VECTOR) {
      for (int j = 0; j < 32; j++) {
        float v = d * (code(seg, qh, j) - bias);
        dst[o + j] = addMin ? v + m : v;
      }
      return;
    }
    IntVector word = IntVector.broadcast(I, seg.get(INT_LE, qh));
    FloatVector dv = FloatVector.broadcast(F, d);
    FloatVector mv = FloatVector.broadcast(F, m);
    for (int half = 0; half < 2; half++) {
      for (int j = 0; j < 16; j += B.length()) {
        ByteVector nib = KQuantCodes.bits(KQuantCodes.load(seg, qh + 4 + j), 4 * half, 0xF);
        for (int p = 0; p < PARTS; p++) {
          int e = 16 * half + j + p * F.length();
          IntVector low = (IntVector) nib.convertShape(VectorOperators.B2I, I, p);
          IntVector high =
              word.lanewise(VectorOperators.LSHR, IntVector.fromArray(I, IOTA, e))
                  .and(1)
                  .lanewise(VectorOperators.LSHL, 4);
          FloatVector v =
              ((FloatVector) low.or(high).sub(bias).convert(VectorOperators.I2F, 0)).mul(dv);
          (addMin ? v.add(mv) : v).intoArray(dst, o + e);
        }
      }
    }
  }
}
