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
 * <p>Design note: JDK 25's Vector API has no half-float lane type or conversion ({@code S2F} is the
 * numeric short-to-float conversion), so the decoder converts with integer lane ops: widen the
 * shorts to int lanes (sign-extending), take exponent+mantissa {@code em = h & 0x7FFF}, shift it to
 * the float position ({@code em << 13}) and multiply by {@code 2^112} to rebias the exponent (this
 * also turns half subnormals, which land on float subnormals, into the right normal values; the
 * multiply is exact), replace infinities/NaNs ({@code em >= 0x7C00}) by {@code (em << 13) |
 * 0x7F800000}, and or the sign bit back. Bit-exact against {@link Float#float16ToFloat} (NaN
 * payloads kept). A plain loop of {@link Float#float16ToFloat} is auto-vectorised to {@code
 * vcvtph2ps} in isolation, but not once inlined into {@link #matmul}, where it ran 5-7x slower than
 * BF16; the explicit vector decoder keeps F16 within a small factor of BF16 there.
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
        toFloat(h).intoArray(dst, off + i + p * F.length());
      }
    }
    for (; i < total; i++) {
      dst[off + i] = Float.float16ToFloat(data.get(SHORT_LE, base + 2L * i));
    }
  }

  /** Lane-wise fp16 to fp32 of sign-extended half bits, as described in the class note. */
  static FloatVector toFloat(IntVector h) {
    IntVector em = h.and(0x7FFF);
    IntVector shifted = em.lanewise(VectorOperators.LSHL, 13);
    IntVector finite = shifted.reinterpretAsFloats().mul(0x1p112f).reinterpretAsInts();
    VectorMask<Integer> special = em.compare(VectorOperators.GE, 0x7C00);
    IntVector bits = finite.blend(shifted.or(0x7F800000), special);
    return bits.or(h.and(0x80000000)).reinterpretAsFloats();
  }
}
