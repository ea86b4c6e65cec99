package io.kvant.engine.tensor;

import static io.kvant.engine.tensor.DotKernel.F;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link DType#BF16} tensor.
 *
 * <p>Design note: a bfloat16 is the top half of a binary32, so decoding loads shorts, widens them
 * to int lanes and shifts left by 16 (the sign-extended high bits are shifted out).
 */
public final class BF16Tensor extends BaseTensor implements Tensor {
  private static final VectorSpecies<Short> S =
      VectorSpecies.of(short.class, VectorShape.forBitSize(Math.max(64, F.length() * 16)));
  private static final VectorSpecies<Integer> I = F.withLanes(int.class);
  private static final int PARTS = S.length() / F.length();

  BF16Tensor(int rows, int cols, MemorySegment data) {
    super(DType.BF16, rows, cols, data);
  }

  @Override
  public DType dtype() {
    return DType.BF16;
  }

  @Override
  float getUnchecked(int row, int col) {
    short bits = data.get(SHORT_LE, ((long) row * cols + col) * 2);
    return Float.intBitsToFloat(bits << 16);
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
        IntVector iv = (IntVector) sv.convertShape(VectorOperators.S2I, I, p);
        iv.lanewise(VectorOperators.LSHL, 16)
            .reinterpretAsFloats()
            .intoArray(dst, off + i + p * F.length());
      }
    }
    for (; i < total; i++) {
      dst[off + i] = Float.intBitsToFloat(data.get(SHORT_LE, base + 2L * i) << 16);
    }
  }
}
