package io.kvant.engine.kv;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The encoders of the per-channel scalings ({@link KvEncoding.Scaling#BLOCK_CHANNEL}, {@link
 * KvEncoding.Scaling#STATIC_CHANNEL}) as scalar loops: they run once per token written, not in the
 * attention loops, and their javadoc rules are what a GPU port must reproduce.
 */
final class ChannelCodes {
  private static final ValueLayout.OfByte BYTE = ValueLayout.JAVA_BYTE;

  private ChannelCodes() {}

  /**
   * {@code codes[dOff + c] = code(x[xOff + c], scales[sOff + c])} for {@code c < n}: fixed scales,
   * clipping what is out of range.
   */
  static void encodeStatic(
      KvCacheType type,
      float[] x,
      int xOff,
      int n,
      float[] scales,
      int sOff,
      MemorySegment codes,
      long dOff) {
    for (int c = 0; c < n; c++) {
      codes.set(BYTE, dOff + c, KvKernels.code(type, x[xOff + c], scales[sOff + c]));
    }
  }

  /**
   * Writes head vector {@code x[xOff .. xOff+n)} into slot {@code slot} of a block whose slot
   * {@code u} has its codes at {@code codes[base + u*n ..)} and whose channel scales are {@code
   * scales[sOff .. sOff+n)}, by {@link KvEncoding.Scaling#BLOCK_CHANNEL}'s rules: slot 0 sets the
   * scales; a later slot grows a channel whose maximum it exceeds, re-coding that channel's earlier
   * slots.
   */
  static void appendBlockChannel(
      KvCacheType type,
      float[] x,
      int xOff,
      int n,
      float[] scales,
      int sOff,
      MemorySegment codes,
      long base,
      int slot) {
    float max = KvKernels.codeMax(type);
    for (int c = 0; c < n; c++) {
      float a = Math.abs(x[xOff + c]);
      if (slot == 0) {
        scales[sOff + c] = a / max;
      } else {
        float s = scales[sOff + c];
        if (a > s * max) {
          float grown = a / max;
          if (s > 0f) {
            float r = s / grown;
            long i = base + c;
            for (int u = 0; u < slot; u++, i += n) {
              codes.set(BYTE, i, recode(type, codes.get(BYTE, i), r));
            }
          }
          scales[sOff + c] = grown;
        }
      }
      codes.set(
          BYTE, base + (long) slot * n + c, KvKernels.code(type, x[xOff + c], scales[sOff + c]));
    }
  }

  /** A code re-expressed under a scale {@code 1 / r} times as large ({@code r <= 1}). */
  static byte recode(KvCacheType type, byte code, float r) {
    return type == KvCacheType.INT8
        ? (byte) Math.round(code * r)
        : KvKernels.fp8Encode(KvKernels.value(type, code) * r);
  }
}
