package io.kvant.engine.tensor;

import static io.kvant.engine.tensor.KQuantCodes.B;
import static io.kvant.engine.tensor.KQuantCodes.QK;

import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.VectorOperators;

/**
 * {@link DType#Q6_K} tensor: super-blocks of 256 values in 210 bytes: 128 bytes {@code ql} (low 4
 * bits), 64 bytes {@code qh} (high 2 bits), 16 int8 scales, fp16 {@code d}. Value {@code e} lies in
 * half {@code h = e/128}, quarter {@code k = (e%128)/32}, lane {@code l = e%32}: its low bits are
 * nibble {@code k/2} of {@code ql[64h + 32*(k%2) + l]}, its high bits are bits {@code 2k, 2k+1} of
 * {@code qh[32h + l]}, its scale is {@code scales[e/16]}. Value {@code = (d * scale) * (q - 32)}.
 */
public final class Q6_KTensor extends BaseTensor implements Tensor {
  private static final int BLOCK_BYTES = 210;

  Q6_KTensor(int rows, int cols, MemorySegment data) {
    super(DType.Q6_K, rows, cols, data);
  }

  @Override
  public DType dtype() {
    return DType.Q6_K;
  }

  @Override
  float getUnchecked(int row, int col) {
    long bo = ((long) row * cols + col) / QK * BLOCK_BYTES;
    int e = col % QK;
    int h = e / 128;
    int k = (e % 128) / 32;
    int l = e % 32;
    int low = (KQuantCodes.u8(data, bo + 64 * h + 32 * (k % 2) + l) >>> (4 * (k / 2))) & 0xF;
    int high = (KQuantCodes.u8(data, bo + 128 + 32 * h + l) >>> (2 * k)) & 3;
    float d =
        f16(data, bo + 208) * data.get(java.lang.foreign.ValueLayout.JAVA_BYTE, bo + 192 + e / 16);
    return d * ((low | (high << 4)) - 32);
  }

  @Override
  void decodeRows(int row, int n, float[] dst, int off) {
    int blocks = n * cols / QK;
    long base = (long) row * (cols / QK) * BLOCK_BYTES;
    for (int b = 0; b < blocks; b++) {
      long bo = base + (long) b * BLOCK_BYTES;
      float d = f16(data, bo + 208);
      for (int h = 0; h < 2; h++) {
        for (int k = 0; k < 4; k++) {
          long ql = bo + 64 * h + 32 * (k % 2);
          long qh = bo + 128 + 32 * h;
          for (int half = 0; half < 2; half++) {
            int e0 = 128 * h + 32 * k + 16 * half;
            float dl = d * data.get(java.lang.foreign.ValueLayout.JAVA_BYTE, bo + 192 + e0 / 16);
            int o = off + b * QK + e0;
            if (KQuantCodes.VECTOR) {
              for (int j = 16 * half; j < 16 * half + 16; j += B.length()) {
                ByteVector low = KQuantCodes.bits(KQuantCodes.load(data, ql + j), 4 * (k / 2), 0xF);
                ByteVector high = KQuantCodes.bits(KQuantCodes.load(data, qh + j), 2 * k, 3);
                ByteVector q = low.or(high.lanewise(VectorOperators.LSHL, 4)).sub((byte) 32);
                KQuantCodes.store(q, dl, dst, o + j - 16 * half);
              }
            } else {
              for (int j = 16 * half; j < 16 * half + 16; j++) {
                int low = (KQuantCodes.u8(data, ql + j) >>> (4 * (k / 2))) & 0xF;
                int high = (KQuantCodes.u8(data, qh + j) >>> (2 * k)) & 3;
                dst[o + j - 16 * half] = dl * ((low | (high << 4)) - 32);
              }
            }
          }
        }
      }
    }
  }
}
