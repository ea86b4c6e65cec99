package io.kvant.quant.quantize;

import io.kvant.engine.tensor.DType;
import io.kvant.engine.tensor.Tensor;
import io.kvant.engine.tensor.Tensors;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Encoders for ggml's {@link DType#Q4_0} and {@link DType#Q8_0} block formats (the decoders are the
 * tensor types), written from the format definition: per block of 32 values, Q4_0 takes the value
 * {@code m} of largest magnitude, {@code d = m / -8}, codes {@code min(15, trunc(x/d + 8.5))} and
 * stores {@code d} as fp16; Q8_0 takes {@code d = absmax / 127} and codes {@code round(x/d)}. This
 * is what llama.cpp's reference quantizer does, so a model quantized here matches a GGUF Q4_0/Q8_0
 * file of the same weights.
 */
public final class GgmlEncoders {
  private GgmlEncoders() {}

  /**
   * @throws IllegalArgumentException if {@code cols} is not a multiple of 32
   */
  public static Tensor q4_0(float[] w, int rows, int cols) {
    ByteBuffer b =
        ByteBuffer.allocate((int) DType.Q4_0.byteSize(rows, cols)).order(ByteOrder.LITTLE_ENDIAN);
    for (int k = 0; k < w.length; k += 32) {
      float amax = 0;
      float max = 0;
      for (int j = 0; j < 32; j++) {
        float v = w[k + j];
        if (Math.abs(v) > amax) {
          amax = Math.abs(v);
          max = v;
        }
      }
      float d = max / -8f;
      float id = d != 0 ? 1f / d : 0f;
      b.putShort(Float.floatToFloat16(d));
      for (int j = 0; j < 16; j++) {
        int lo = Math.min(15, (int) (w[k + j] * id + 8.5f));
        int hi = Math.min(15, (int) (w[k + 16 + j] * id + 8.5f));
        b.put((byte) (lo | (hi << 4)));
      }
    }
    return Tensors.of(DType.Q4_0, rows, cols, MemorySegment.ofArray(b.array()));
  }

  /**
   * @throws IllegalArgumentException if {@code cols} is not a multiple of 32
   */
  public static Tensor q8_0(float[] w, int rows, int cols) {
    ByteBuffer b =
        ByteBuffer.allocate((int) DType.Q8_0.byteSize(rows, cols)).order(ByteOrder.LITTLE_ENDIAN);
    for (int k = 0; k < w.length; k += 32) {
      float amax = 0;
      for (int j = 0; j < 32; j++) {
        amax = Math.max(amax, Math.abs(w[k + j]));
      }
      float d = amax / 127f;
      float id = d != 0 ? 1f / d : 0f;
      b.putShort(Float.floatToFloat16(d));
      for (int j = 0; j < 32; j++) {
        b.put((byte) Math.round(w[k + j] * id));
      }
    }
    return Tensors.of(DType.Q8_0, rows, cols, MemorySegment.ofArray(b.array()));
  }
}
