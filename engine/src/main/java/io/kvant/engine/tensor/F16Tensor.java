package io.kvant.engine.tensor;

import static io.kvant.engine.tensor.DotKernel.F;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link DType#F16} tensor.
 *
 * <p>Design note: JDK 25's Vector API has no half-float lane type, so decoding is done with integer
 * lane ops: moving the 15 exponent+mantissa bits up by 13 gives a binary32 whose value is the half
 * value times 2^-112 (for zeros, subnormals and normals alike), one exact multiply by 2^112 fixes
 * the exponent, infinities/NaNs (exponent 31) are patched with a blend and the sign is or-ed back.
 * Results equal {@link Float#float16ToFloat} bit for bit.
 */
public final class F16Tensor extends BaseTensor implements Tensor {
  private static final VectorSpecies<Short> S =
      VectorSpecies.of(short.class, VectorShape.forBitSize(Math.max(64, F.length() * 16)));
  private static final VectorSpecies<Integer> I = F.withLanes(int.class);
  private static final int PARTS = S.length() / F.length();

  F16Tensor(int rows, int cols, MemorySegment data) {
    super(DType.F16, rows, cols, data);
  }

  @Override
  public DType dtype() {
    return DType.F16;
  }

  @Override
  float getUnchecked(int row, int col) {
    return f16(data, ((long) row * cols + col) * 2);
  }

  @Override
  void decodeRows(int row, int n, float[] dst, int off) {
    int total = n * cols; // rows are contiguous, so decode them as one run
    long base = (long) row * cols * 2;
    int upper = S.loopBound(total);
    int i = 0;
    for (; i < upper; i += S.length()) {
      ShortVector sv =
          ShortVector.fromMemorySegment(S, data, base + 2L * i, ByteOrder.LITTLE_ENDIAN);
      for (int p = 0; p < PARTS; p++) {
        IntVector h = (IntVector) sv.convertShape(VectorOperators.S2I, I, p);
        decode(h).intoArray(dst, off + i + p * F.length());
      }
    }
    for (; i < total; i++) {
      dst[off + i] = f16(data, base + 2L * i);
    }
  }

  /** Half-float bits in the low 16 bits of each lane (upper bits ignored) to floats. */
  private static FloatVector decode(IntVector h) {
    IntVector em = h.and(0x7fff);
    IntVector shifted = em.lanewise(VectorOperators.LSHL, 13);
    IntVector finite = shifted.reinterpretAsFloats().mul(0x1p112f).reinterpretAsInts();
    VectorMask<Integer> special = em.compare(VectorOperators.GE, 0x7c00);
    IntVector bits = finite.blend(shifted.or(0x7f800000), special);
    IntVector sign = h.and(0x8000).lanewise(VectorOperators.LSHL, 16);
    return bits.or(sign).reinterpretAsFloats();
  }
}
