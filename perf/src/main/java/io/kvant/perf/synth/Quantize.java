package io.kvant.perf.synth;

import java.nio.ByteBuffer;

/**
 * Encodes one row of floats into ggml storage at a buffer's position, following ggml's reference
 * quantizers ({@code quantize_row_q8_0_ref}, {@code quantize_row_q4_0_ref}): per block of 32, Q8_0
 * stores {@code d = amax / 127} and {@code q = round(x / d)}; Q4_0 stores {@code d = m / -8} where
 * {@code m} is the value of largest magnitude (sign kept) and {@code q = min(15, (int) (x / d +
 * 8.5))}, element {@code j} in the low nibble of byte {@code j} and element {@code j + 16} in its
 * high nibble. The buffer must be little-endian.
 */
final class Quantize {
  private Quantize() {}

  static void row(WeightType type, float[] x, int n, ByteBuffer out) {
    switch (type) {
      case F32 -> {
        for (int i = 0; i < n; i++) {
          out.putFloat(x[i]);
        }
      }
      case F16 -> {
        for (int i = 0; i < n; i++) {
          out.putShort(Float.floatToFloat16(x[i]));
        }
      }
      case Q8_0 -> {
        for (int b = 0; b < n; b += 32) {
          float amax = 0;
          for (int j = 0; j < 32; j++) {
            amax = Math.max(amax, Math.abs(x[b + j]));
          }
          float d = amax / 127f;
          float id = d != 0 ? 1f / d : 0f;
          out.putShort(Float.floatToFloat16(d));
          for (int j = 0; j < 32; j++) {
            out.put((byte) Math.round(x[b + j] * id));
          }
        }
      }
      case Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K -> KQuantEncoder.row(type, x, n, out);
      case Q4_0 -> {
        for (int b = 0; b < n; b += 32) {
          float amax = 0;
          float max = 0;
          for (int j = 0; j < 32; j++) {
            float v = x[b + j];
            if (amax < Math.abs(v)) {
              amax = Math.abs(v);
              max = v;
            }
          }
          float d = max / -8f;
          float id = d != 0 ? 1f / d : 0f;
          out.putShort(Float.floatToFloat16(d));
          for (int j = 0; j < 16; j++) {
            int q0 = Math.min(15, (int) (x[b + j] * id + 8.5f));
            int q1 = Math.min(15, (int) (x[b + 16 + j] * id + 8.5f));
            out.put((byte) (q0 | (q1 << 4)));
          }
        }
      }
    }
  }
}
