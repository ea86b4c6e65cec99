package io.kvant.engine.tensor;

import static io.kvant.engine.tensor.KQuantCodes.B;
import static io.kvant.engine.tensor.KQuantCodes.QK;

import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.ByteVector;

/**
 * {@link DType#Q4_K} tensor: super-blocks of 256 values in 144 bytes: fp16 {@code d}, fp16 {@code
 * dmin}, a 12-byte table of eight 6-bit scales and eight 6-bit mins ({@link KQuantCodes#scale6},
 * {@link KQuantCodes#min6}), then 128 bytes of 4-bit codes. Sub-block {@code s} (32 values) uses
 * scale/min {@code s}; its codes are the low nibbles ({@code s} even) or high nibbles ({@code s}
 * odd) of bytes {@code 32*(s/2) .. +32}. Value {@code = (d * scale) * q - dmin * min}.
 */
public final class Q4_KTensor extends BaseTensor implements Tensor {
  private static final int BLOCK_BYTES = 144;

  Q4_KTensor(int rows, int cols, MemorySegment data) {
    super(DType.Q4_K, rows, cols, data);
  }

  @Override
  public DType dtype() {
    return DType.Q4_K;
  }

  @Override
  float getUnchecked(int row, int col) {
    long bo = ((long) row * cols + col) / QK * BLOCK_BYTES;
    int e = col % QK;
    int s = e / 32;
    int packed = KQuantCodes.u8(data, bo + 16 + 32 * (s / 2) + e % 32);
    int q = (s & 1) == 0 ? packed & 0xF : packed >>> 4;
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
        long q = bo + 16 + 32 * c;
        int o = off + k * QK + 64 * c;
        if (KQuantCodes.VECTOR) {
          for (int j = 0; j < 32; j += B.length()) {
            ByteVector packed = KQuantCodes.load(data, q + j);
            KQuantCodes.store(KQuantCodes.bits(packed, 0, 0xF), d1, m1, dst, o + j);
            KQuantCodes.store(KQuantCodes.bits(packed, 4, 0xF), d2, m2, dst, o + 32 + j);
          }
        } else {
          for (int j = 0; j < 32; j++) {
            int packed = KQuantCodes.u8(data, q + j);
            dst[o + j] = d1 * (packed & 0xF) - m1;
            dst[o + 32 + j] = d2 * (packed >>> 4) - m2;
          }
        }
      }
    }
  }
}
