package io.kvant.engine.tensor;

import static io.kvant.engine.tensor.KQuantCodes.B;
import static io.kvant.engine.tensor.KQuantCodes.QK;

import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.VectorOperators;

/**
 * {@link DType#Q5_K} tensor: super-blocks of 256 values in 176 bytes: fp16 {@code d}, fp16 {@code
 * dmin}, the 12-byte scale/min table of {@link Q4_KTensor}, 32 bytes {@code qh} of high bits, then
 * 128 bytes of low nibbles laid out as in Q4_K. The 5th bit of value {@code e} (sub-block {@code s
 * = e/32}) is bit {@code s} of {@code qh[e % 32]}. Value {@code = (d * scale) * q - dmin * min}.
 */
public final class Q5_KTensor extends BaseTensor implements Tensor {
  private static final int BLOCK_BYTES = 176;

  Q5_KTensor(int rows, int cols, MemorySegment data) {
    super(DType.Q5_K, rows, cols, data);
  }

  @Override
  public DType dtype() {
    return DType.Q5_K;
  }

  @Override
  float getUnchecked(int row, int col) {
    long bo = ((long) row * cols + col) / QK * BLOCK_BYTES;
    int e = col % QK;
    int s = e / 32;
    int packed = KQuantCodes.u8(data, bo + 48 + 32 * (s / 2) + e % 32);
    int low = (s & 1) == 0 ? packed & 0xF : packed >>> 4;
    int high = (KQuantCodes.u8(data, bo + 16 + e % 32) >>> s) & 1;
    int q = low | (high << 4);
    float d = f16(data, bo) * KQuantCodes.scale6(data, bo + 4, s);
    float m = f16(data, bo + 2) * KQuantCodes.min6(data, bo + 4, s);
    return d * q - m;
  }

  @Override
  void decodeRows(int row, int n, float[] dst, int off) {
    int blocks = n * cols / QK;
    long base = (long) row * (cols / QK) * BLOCK_BYTES;
    for (int k = 0; k < blocks; k++) {
      long bo = base + (long) k * BLOCK_BYTES;
      float d = f16(data, bo);
      float dmin = f16(data, bo + 2);
      for (int c = 0; c < 4; c++) {
        float d1 = d * KQuantCodes.scale6(data, bo + 4, 2 * c);
        float m1 = dmin * KQuantCodes.min6(data, bo + 4, 2 * c);
        float d2 = d * KQuantCodes.scale6(data, bo + 4, 2 * c + 1);
        float m2 = dmin * KQuantCodes.min6(data, bo + 4, 2 * c + 1);
        long qh = bo + 16;
        long ql = bo + 48 + 32 * c;
        int o = off + k * QK + 64 * c;
        if (KQuantCodes.VECTOR) {
          for (int j = 0; j < 32; j += B.length()) {
            ByteVector packed = KQuantCodes.load(data, ql + j);
            ByteVector high = KQuantCodes.load(data, qh + j);
            ByteVector lo =
                KQuantCodes.bits(packed, 0, 0xF)
                    .or(KQuantCodes.bits(high, 2 * c, 1).lanewise(VectorOperators.LSHL, 4));
            ByteVector hi =
                KQuantCodes.bits(packed, 4, 0xF)
                    .or(KQuantCodes.bits(high, 2 * c + 1, 1).lanewise(VectorOperators.LSHL, 4));
            KQuantCodes.store(lo, d1, m1, dst, o + j);
            KQuantCodes.store(hi, d2, m2, dst, o + 32 + j);
          }
        } else {
          for (int j = 0; j < 32; j++) {
            int packed = KQuantCodes.u8(data, ql + j);
            int high = KQuantCodes.u8(data, qh + j);
            dst[o + j] = d1 * ((packed & 0xF) | (((high >>> (2 * c)) & 1) << 4)) - m1;
            dst[o + 32 + j] = d2 * ((packed >>> 4) | (((high >>> (2 * c + 1)) & 1) << 4)) - m2;
          }
        }
      }
    }
  }
}
