package io.kvant.engine.tensor;

import static io.kvant.engine.tensor.DotKernel.F;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link DType#Q8_0} tensor: blocks of 32 values, each an fp16 scale {@code d} followed by 32 int8
 * {@code q}; value {@code = d * q}.
 *
 * <p>Design note: decoding loads a block's int8s as one byte vector (at least 64 bits), widens each
 * part to float lanes ({@code B2F}) and multiplies by the broadcast scale; the product of an fp16
 * and an int8 is exact in binary32. Vector lengths whose byte vector would exceed a block fall back
 * to the scalar decoder.
 */
public final class Q8_0Tensor extends BaseTensor implements Tensor {
  private static final int BLOCK = 32;
  private static final int BLOCK_BYTES = 34;
  private static final VectorSpecies<Byte> B =
      VectorSpecies.of(byte.class, VectorShape.forBitSize(Math.max(64, F.length() * 8)));
  private static final int PARTS = B.length() / F.length();
  private static final boolean VECTOR = B.length() <= BLOCK;

  Q8_0Tensor(int rows, int cols, MemorySegment data) {
    super(DType.Q8_0, rows, cols, data);
  }

  @Override
  public DType dtype() {
    return DType.Q8_0;
  }

  @Override
  float getUnchecked(int row, int col) {
    long block = ((long) row * cols + col) / BLOCK * BLOCK_BYTES;
    byte q = data.get(ValueLayout.JAVA_BYTE, block + 2 + col % BLOCK);
    return f16(data, block) * q;
  }

  @Override
  void decodeRows(int row, int n, float[] dst, int off) {
    int blocks = n * cols / BLOCK; // rows are contiguous and whole blocks
    long base = (long) row * (cols / BLOCK) * BLOCK_BYTES;
    for (int k = 0; k < blocks; k++) {
      long bo = base + (long) k * BLOCK_BYTES;
      int o = off + k * BLOCK;
      float d = f16(data, bo);
      if (VECTOR) {
        FloatVector dv = FloatVector.broadcast(F, d);
        for (int j = 0; j < BLOCK; j += B.length()) {
          ByteVector q = ByteVector.fromMemorySegment(B, data, bo + 2 + j, ByteOrder.LITTLE_ENDIAN);
          for (int p = 0; p < PARTS; p++) {
            ((FloatVector) q.convertShape(VectorOperators.B2F, F, p))
                .mul(dv)
                .intoArray(dst, o + j + p * F.length());
          }
        }
      } else {
        for (int j = 0; j < BLOCK; j++) {
          dst[o + j] = d * data.get(ValueLayout.JAVA_BYTE, bo + 2 + j);
        }
      }
    }
  }
}
