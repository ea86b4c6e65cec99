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
 * {@link DType#Q4_0} tensor: blocks of 32 values, each an fp16 scale {@code d} followed by 16
 * bytes; the low nibble of byte {@code j} is element {@code j}, the high nibble element {@code 16 +
 * j}; value {@code = d * (nibble - 8)}.
 *
 * <p>Design note: decoding loads the packed bytes as a byte vector, splits nibbles with a lane-wise
 * {@code and 0xF} and unsigned {@code >>> 4}, recentres by 8 in byte lanes, widens to float ({@code
 * B2F}) and scales; all exact in binary32. Vector lengths whose byte vector would exceed the 16
 * packed bytes fall back to the scalar decoder.
 */
public final class Q4_0Tensor extends BaseTensor implements Tensor {
  private static final int BLOCK = 32;
  private static final int HALF = 16;
  private static final int BLOCK_BYTES = 18;
  private static final VectorSpecies<Byte> B =
      VectorSpecies.of(byte.class, VectorShape.forBitSize(Math.max(64, F.length() * 8)));
  private static final int PARTS = B.length() / F.length();
  private static final boolean VECTOR = B.length() <= HALF;

  Q4_0Tensor(int rows, int cols, MemorySegment data) {
    super(DType.Q4_0, rows, cols, data);
  }

  @Override
  public DType dtype() {
    return DType.Q4_0;
  }

  @Override
  float getUnchecked(int row, int col) {
    long block = ((long) row * cols + col) / BLOCK * BLOCK_BYTES;
    int j = col % BLOCK;
    int packed = data.get(ValueLayout.JAVA_BYTE, block + 2 + j % HALF) & 0xFF;
    int nibble = j < HALF ? packed & 0xF : packed >>> 4;
    return f16(data, block) * (nibble - 8);
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
        for (int j = 0; j < HALF; j += B.length()) {
          ByteVector packed =
              ByteVector.fromMemorySegment(B, data, bo + 2 + j, ByteOrder.LITTLE_ENDIAN);
          ByteVector lo = packed.and((byte) 0x0F).sub((byte) 8);
          ByteVector hi = packed.lanewise(VectorOperators.LSHR, 4).sub((byte) 8);
          for (int p = 0; p < PARTS; p++) {
            int at = o + j + p * F.length();
            ((FloatVector) lo.convertShape(VectorOperators.B2F, F, p)).mul(dv).intoArray(dst, at);
            ((FloatVector) hi.convertShape(VectorOperators.B2F, F, p))
                .mul(dv)
                .intoArray(dst, at + HALF);
          }
        }
      } else {
        for (int j = 0; j < HALF; j++) {
          int packed = data.get(ValueLayout.JAVA_BYTE, bo + 2 + j) & 0xFF;
          dst[o + j] = d * ((packed & 0xF) - 8);
          dst[o + j + HALF] = d * ((packed >>> 4) - 8);
        }
      }
    }
  }
}
