package io.kvant.engine.tensor;

import static io.kvant.engine.tensor.KQuantCodes.B;
import static io.kvant.engine.tensor.KQuantCodes.QK;

import java.lang.foreign.MemorySegment;

/**
 * {@link DType#Q2_K} tensor: super-blocks of 256 values in 84 bytes: 16 bytes of per-16-value
 * scales (low nibble) and mins (high nibble), 64 bytes {@code qs} of 2-bit codes, fp16 {@code d},
 * fp16 {@code dmin}. Value {@code e} lies in half {@code h = e/128}, plane {@code j = (e%128)/32},
 * lane {@code l = e%32}: its code is bits {@code 2j, 2j+1} of {@code qs[32h + l]}. With {@code sm =
 * scales[e/16]}, value {@code = (d * (sm & 15)) * q - dmin * (sm >> 4)}.
 */
public final class Q2_KTensor extends BaseTensor implements Tensor {
  private static final int BLOCK_BYTES = 84;

  Q2_KTensor(int rows, int cols, MemorySegment data) {
    super(DType.Q2_K, rows, cols, data);
  }

  @Override
  public DType dtype() {
    return DType.Q2_K;
  }

  @Override
  float getUnchecked(int row, int col) {
    long bo = ((long) row * cols + col) / QK * BLOCK_BYTES;
    int e = col % QK;
    int h = e / 128;
    int j = (e % 128) / 32;
    int q = (KQuantCodes.u8(data, bo + 16 + 32 * h + e % 32) >>> (2 * j)) & 3;
    int sm = KQuantCodes.u8(data, bo + e / 16);
    float d = f16(data, bo + 80) * (sm & 0xF);
    float m = f16(data, bo + 82) * (sm >>> 4);
    return d * q - m;
  }

  @Override
  void decodeRows(int row, int n, float[] dst, int off) {
    int blocks = n * cols / QK;
    long base = (long) row * (cols / QK) * BLOCK_BYTES;
    for (int b = 0; b < blocks; b++) {
      long bo = base + (long) b * BLOCK_BYTES;
      float d = f16(data, bo + 80);
      float dmin = f16(data, bo + 82);
      for (int h = 0; h < 2; h++) {
        long qs = bo + 16 + 32 * h;
        for (int j = 0; j < 4; j++) {
          for (int half = 0; half < 2; half++) {
            int e0 = 128 * h + 32 * j + 16 * half;
            int sm = KQuantCodes.u8(data, bo + e0 / 16);
            float dl = d * (sm & 0xF);
            float ml = dmin * (sm >>> 4);
            int o = off + b * QK + e0;
            int from = 16 * half;
            if (KQuantCodes.VECTOR) {
              for (int l = from; l < from + 16; l += B.length()) {
                KQuantCodes.store(
                    KQuantCodes.bits(KQuantCodes.load(data, qs + l), 2 * j, 3),
                    dl,
                    ml,
                    dst,
                    o + l - from);
              }
            } else {
              for (int l = from; l < from + 16; l++) {
                dst[o + l - from] = dl * ((KQuantCodes.u8(data, qs + l) >>> (2 * j)) & 3) - ml;
              }
            }
          }
        }
      }
    }
  }
}
