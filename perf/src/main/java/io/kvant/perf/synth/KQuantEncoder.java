package io.kvant.perf.synth;

import java.nio.ByteBuffer;

/**
 * Encodes rows of floats into ggml's 5-bit ({@code Q5_0}, {@code Q5_1}) and K-quant ({@code
 * Q2_K}..{@code Q6_K}) blocks, the layouts kvant's tensor classes decode (see {@code
 * io.kvant.engine.tensor.Q4_KTensor} and its siblings).
 *
 * <p>A plain round-to-nearest encoder written from the layouts, not llama.cpp's search-based one:
 * each sub-block takes its range (with a min of at most zero for the types that store a min, or its
 * largest magnitude for the symmetric ones), the sub-block scales and mins are quantized against
 * the largest of the super-block, and the codes are then rounded against the scales as they will be
 * decoded (fp16 super-scales times integer sub-scales). Its error is somewhat above llama.cpp's; it
 * exists so that synthetic models and tests can have K-quant files.
 */
final class KQuantEncoder {
  private static final int QK = 256;

  private KQuantEncoder() {}

  /**
   * Appends the blocks of {@code x[0..n)} ({@code n} a multiple of the block size) to {@code out}.
   */
  static void row(WeightType type, float[] x, int n, ByteBuffer out) {
    int block = type.ggml().blockSize();
    for (int b = 0; b < n; b += block) {
      switch (type) {
        case Q5_0 -> q5_0(x, b, out);
        case Q5_1 -> q5_1(x, b, out);
        case Q2_K -> q2_k(x, b, out);
        case Q3_K -> q3_k(x, b, out);
        case Q4_K -> q4_k(x, b, false, out);
        case Q5_K -> q4_k(x, b, true, out);
        case Q6_K -> q6_k(x, b, out);
        default -> throw new IllegalArgumentException("not a K-quant or 5-bit type: " + type);
      }
    }
  }

  private static short f16(float v) {
    return Float.floatToFloat16(v);
  }

  private static float rounded16(float v) {
    return Float.float16ToFloat(Float.floatToFloat16(v));
  }

  private static int clamp(long v, int lo, int hi) {
    return (int) Math.max(lo, Math.min(hi, v));
  }

  // ------------------------------------------------------------------ 5-bit, 32 per block

  private static void q5_0(float[] x, int o, ByteBuffer out) {
    float amax = 0;
    float max = 0;
    for (int j = 0; j < 32; j++) {
      if (Math.abs(x[o + j]) > amax) {
        amax = Math.abs(x[o + j]);
        max = x[o + j];
      }
    }
    float d = rounded16(max / -16f);
    int[] q = new int[32];
    for (int j = 0; j < 32; j++) {
      q[j] = d == 0 ? 16 : clamp(Math.round(x[o + j] / d) + 16, 0, 31);
    }
    out.putShort(f16(d));
    packQ5(q, out);
  }

  private static void q5_1(float[] x, int o, ByteBuffer out) {
    float min = Float.POSITIVE_INFINITY;
    float max = Float.NEGATIVE_INFINITY;
    for (int j = 0; j < 32; j++) {
      min = Math.min(min, x[o + j]);
      max = Math.max(max, x[o + j]);
    }
    float d = rounded16((max - min) / 31f);
    float m = rounded16(min);
    int[] q = new int[32];
    for (int j = 0; j < 32; j++) {
      q[j] = d == 0 ? 0 : clamp(Math.round((x[o + j] - m) / d), 0, 31);
    }
    out.putShort(f16(d));
    out.putShort(f16(m));
    packQ5(q, out);
  }

  /** qh (bit j = 5th bit of element j), then element j | element j+16 << 4 in byte j. */
  private static void packQ5(int[] q, ByteBuffer out) {
    int qh = 0;
    for (int j = 0; j < 32; j++) {
      qh |= ((q[j] >>> 4) & 1) << j;
    }
    out.putInt(qh);
    for (int j = 0; j < 16; j++) {
      out.put((byte) ((q[j] & 0xF) | ((q[j + 16] & 0xF) << 4)));
    }
  }

  // ------------------------------------------------------------------ K-quants, 256 per block

  /**
   * Sub-block scales and mins for codes in {@code [0, qmax]} with a min: {@code scale[i]} and
   * {@code min[i] >= 0} such that {@code x ~ scale*q - min}.
   */
  private static void rangeScales(float[] x, int o, int sub, int qmax, float[] scale, float[] min) {
    for (int i = 0; i < QK / sub; i++) {
      float lo = 0;
      float hi = Float.NEGATIVE_INFINITY;
      for (int j = 0; j < sub; j++) {
        lo = Math.min(lo, x[o + i * sub + j]);
        hi = Math.max(hi, x[o + i * sub + j]);
      }
      scale[i] = Math.max(0, hi - lo) / qmax;
      min[i] = -lo;
    }
  }

  private static float max(float[] v) {
    float m = 0;
    for (float f : v) {
      m = Math.max(m, f);
    }
    return m;
  }

  /** Integer sub-scales {@code round(v / d)} in {@code [0, levels]}; {@code d} already fp16. */
  private static int[] quantizeScales(float[] v, float d, int levels) {
    int[] q = new int[v.length];
    for (int i = 0; i < v.length; i++) {
      q[i] = d == 0 ? 0 : clamp(Math.round(v[i] / d), 0, levels);
    }
    return q;
  }

  /** Codes of sub-block {@code i} for {@code x ~ ds*q - dm}. */
  private static void codes(
      float[] x, int o, int i, int sub, float ds, float dm, int qmax, int[] q) {
    for (int j = 0; j < sub; j++) {
      int e = i * sub + j;
      q[e] = ds == 0 ? 0 : clamp(Math.round((x[o + e] + dm) / ds), 0, qmax);
    }
  }

  private static void q2_k(float[] x, int o, ByteBuffer out) {
    float[] scale = new float[16];
    float[] min = new float[16];
    rangeScales(x, o, 16, 3, scale, min);
    float d = rounded16(max(scale) / 15f);
    float dmin = rounded16(max(min) / 15f);
    int[] sc = quantizeScales(scale, d, 15);
    int[] mn = quantizeScales(min, dmin, 15);
    int[] q = new int[QK];
    for (int i = 0; i < 16; i++) {
      codes(x, o, i, 16, d * sc[i], dmin * mn[i], 3, q);
      out.put((byte) (sc[i] | (mn[i] << 4)));
    }
    // byte 32h + l, bits 2j: element 128h + 32j + l
    for (int h = 0; h < 2; h++) {
      for (int l = 0; l < 32; l++) {
        int v = 0;
        for (int j = 0; j < 4; j++) {
          v |= q[128 * h + 32 * j + l] << (2 * j);
        }
        out.put((byte) v);
      }
    }
    out.putShort(f16(d));
    out.putShort(f16(dmin));
  }

  private static void q3_k(float[] x, int o, ByteBuffer out) {
    float[] scale = new float[16];
    for (int i = 0; i < 16; i++) {
      float amax = 0;
      for (int j = 0; j < 16; j++) {
        amax = Math.max(amax, Math.abs(x[o + 16 * i + j]));
      }
      scale[i] = amax / 4f;
    }
    float d = rounded16(max(scale) / 31f);
    int[] sc = quantizeScales(scale, d, 31);
    int[] q = new int[QK]; // q + 4, in [0, 7]
    for (int i = 0; i < 16; i++) {
      float ds = d * sc[i];
      for (int j = 0; j < 16; j++) {
        int e = 16 * i + j;
        q[e] = ds == 0 ? 4 : clamp(Math.round(x[o + e] / ds) + 4, 0, 7);
      }
    }
    for (int l = 0; l < 32; l++) { // hmask: bit 4h + j of byte l is set when q >= 4
      int v = 0;
      for (int h = 0; h < 2; h++) {
        for (int j = 0; j < 4; j++) {
          v |= (q[128 * h + 32 * j + l] >>> 2) << (4 * h + j);
        }
      }
      out.put((byte) v);
    }
    for (int h = 0; h < 2; h++) {
      for (int l = 0; l < 32; l++) {
        int v = 0;
        for (int j = 0; j < 4; j++) {
          v |= (q[128 * h + 32 * j + l] & 3) << (2 * j);
        }
        out.put((byte) v);
      }
    }
    byte[] table = new byte[12]; // scale + 32 in 6 bits: low nibble / high 2 bits
    for (int i = 0; i < 16; i++) {
      int s = sc[i] + 32;
      table[i % 8] |= (byte) ((s & 0xF) << (4 * (i / 8)));
      table[8 + i % 4] |= (byte) (((s >>> 4) & 3) << (2 * (i / 4)));
    }
    out.put(table);
    out.putShort(f16(d));
  }

  /** Q4_K, or Q5_K when {@code fiveBit}: eight sub-blocks of 32 with 6-bit scales and mins. */
  private static void q4_k(float[] x, int o, boolean fiveBit, ByteBuffer out) {
    int qmax = fiveBit ? 31 : 15;
    float[] scale = new float[8];
    float[] min = new float[8];
    rangeScales(x, o, 32, qmax, scale, min);
    float d = rounded16(max(scale) / 63f);
    float dmin = rounded16(max(min) / 63f);
    int[] sc = quantizeScales(scale, d, 63);
    int[] mn = quantizeScales(min, dmin, 63);
    int[] q = new int[QK];
    for (int i = 0; i < 8; i++) {
      codes(x, o, i, 32, d * sc[i], dmin * mn[i], qmax, q);
    }
    out.putShort(f16(d));
    out.putShort(f16(dmin));
    byte[] table = new byte[12];
    for (int j = 0; j < 8; j++) {
      if (j < 4) {
        table[j] = (byte) sc[j];
        table[j + 4] = (byte) mn[j];
      } else {
        table[j + 4] = (byte) ((sc[j] & 0xF) | ((mn[j] & 0xF) << 4));
        table[j - 4] |= (byte) ((sc[j] >>> 4) << 6);
        table[j] |= (byte) ((mn[j] >>> 4) << 6);
      }
    }
    out.put(table);
    if (fiveBit) {
      for (int l = 0; l < 32; l++) {
        int v = 0;
        for (int s = 0; s < 8; s++) {
          v |= ((q[32 * s + l] >>> 4) & 1) << s;
        }
        out.put((byte) v);
      }
    }
    for (int c = 0; c < 4; c++) {
      for (int l = 0; l < 32; l++) {
        out.put((byte) ((q[64 * c + l] & 0xF) | ((q[64 * c + 32 + l] & 0xF) << 4)));
      }
    }
  }

  private static void q6_k(float[] x, int o, ByteBuffer out) {
    float[] scale = new float[16];
    for (int i = 0; i < 16; i++) {
      float amax = 0;
      for (int j = 0; j < 16; j++) {
        amax = Math.max(amax, Math.abs(x[o + 16 * i + j]));
      }
      scale[i] = amax / 32f;
    }
    float d = rounded16(max(scale) / 127f);
    int[] sc = quantizeScales(scale, d, 127);
    int[] q = new int[QK]; // q + 32, in [0, 63]
    for (int i = 0; i < 16; i++) {
      float ds = d * sc[i];
      for (int j = 0; j < 16; j++) {
        int e = 16 * i + j;
        q[e] = ds == 0 ? 32 : clamp(Math.round(x[o + e] / ds) + 32, 0, 63);
      }
    }
    for (int h = 0; h < 2; h++) { // ql: byte 64h + 32(k%2) + l, nibble k/2
      for (int half = 0; half < 2; half++) {
        for (int l = 0; l < 32; l++) {
          int lowNibble = q[128 * h + 32 * half + l] & 0xF;
          int highNibble = q[128 * h + 32 * (half + 2) + l] & 0xF;
          out.put((byte) (lowNibble | (highNibble << 4)));
        }
      }
    }
    for (int h = 0; h < 2; h++) { // qh: byte 32h + l, bits 2k
      for (int l = 0; l < 32; l++) {
        int v = 0;
        for (int k = 0; k < 4; k++) {
          v |= (q[128 * h + 32 * k + l] >>> 4) << (2 * k);
        }
        out.put((byte) v);
      }
    }
    for (int i = 0; i < 16; i++) {
      out.put((byte) sc[i]);
    }
    out.putShort(f16(d));
  }
}
