package io.kvant.engine.tensor;

import static io.kvant.engine.tensor.KQuantCodes.B;
import static io.kvant.engine.tensor.KQuantCodes.QK;

import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.VectorOperators;

/**
 * {@link DType#Q3_K} tensor: super-blocks of 256 values in 110 bytes: 32 bytes {@code hmask}, 64
 * bytes {@code qs} (2-bit codes), a 12-byte table of sixteen 6-bit scales ({@link
 * KQuantCodes#q3Scale}), fp16 {@code d}. Value {@code e} lies in half {@code h = e/128}, plane
 * {@code j = (e%128)/32}, lane {@code l = e%32}: its 2 low bits are bits {@code 2j, 2j+1} of {@code
 * qs[32h + l]}, and 4 is subtracted unless bit {@code 4h + j} of {@code hmask[l]} is set. Value
 * {@code = (d * scale[e/16]) * q}, {@code q} in [-4, 3].
 */
public final class Q3_KTensor extends BaseTensor implements Tensor {
  private static final int BLOCK_BYTES = 110;

  Q3_KTensor(int rows, int cols, MemorySegment data) {
    super(DType.Q3_K, rows, cols, data);
  }

  @Override
  public DType dtype() {
    return DType.Q3_K;
  }

  @Override
  float getUnchecked(int row, int col) {
    long bo = ((long) row * cols + col) / QK * BLOCK_BYTES;
    int e = col % QK;
    int h = e / 128;
    int j = (e % 128) / 32;
    int l = e % 32;
    int low = (KQuantCodes.u8(data, bo + 32 + 32 * h + l) >>> (2 * j)) & 3;
    int high = (KQuantCodes.u8(data, bo + l) >>> (4 * h + j)) & 1;
    float d = f16(data, bo + 108) * KQuantCodes.q3Scale(data, bo + 96, e / 16);
    return d * (low - (high == 0 ? 4 : 0));
  }

  @Override
  void decodeRows(int row, int n, float[] dst, int off) {
    int blocks = n * cols / QK;
    long base = (long) row * (cols / QK) * BLOCK_BYTES;
    for (int b = 0; b < blocks; b++) {
      long bo = base + (long) b * BLOCK_BYTES;
      float d = f16(data, bo + 108);
      for (int h = 0; h < 2; h++) {
        long qs = bo + 32 + 32 * h;
        for (int j = 0; j < 4; j++) {
          for (int half = 0; half < 2; half++) {
            int e0 = 128 * h + 32 * j + 16 * half;
            float dl = d * KQuantCodes.q3Scale(data, bo + 96, e0 / 16);
            int o = off + b * QK + e0;
            int from = 16 * half;
            if (KQuantCodes.VECTOR) {
              for (int l = from; l < from + 16; l += B.length()) {
                ByteVector low = KQuantCodes.bits(KQuantCodes.load(data, qs + l), 2 * j, 3);
                ByteVector high = KQuantCodes.bits(KQuantCodes.load(data, bo + l), 4 * h + j, 1);
                ByteVector q = low.add(high.lanewise(VectorOperators.LSHL, 2)).sub((byte) 4);
                KQuantCodes.store(q, dl, dst, o + l - from);
              }
            } else {
              for (int l = from; l < from + 16; l++) {
                int low = (KQuantCodes.u8(data, qs + l) >>> (2 * j)) & 3;
                int high = (KQuantCodes.u8(data, bo + l) >>> (4 * h + j)) & 1;
                dst[o + l - from] = dl * (low - (high == 0 ? 4 : 0));
              }
            }
          }
        }
      }
    }
  }
}
