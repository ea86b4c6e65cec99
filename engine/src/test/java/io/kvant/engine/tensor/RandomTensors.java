package io.kvant.engine.tensor;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;

/** Random tensors with valid, varied contents (negative scales, full int8/nibble ranges). */
final class RandomTensors {
  private RandomTensors() {}

  /**
   * Random tensor of {@code type}; the data is placed at an odd offset of a larger heap array so
   * that no alignment can be assumed, and made read-only like a mapped file.
   */
  static Tensor random(DType type, int rows, int cols, Random rnd) {
    if (type.hasSideData()) {
      return randomQuant(type, rows, cols, rnd);
    }
    int size = (int) type.byteSize(rows, cols);
    ByteBuffer buf = ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
    long values = (long) rows * cols;
    switch (type) {
      case F32 -> {
        for (long i = 0; i < values; i++) {
          buf.putFloat((float) rnd.nextGaussian());
        }
      }
      case F16 -> {
        for (long i = 0; i < values; i++) {
          buf.putShort(Float.floatToFloat16((float) rnd.nextGaussian()));
        }
      }
      case BF16 -> {
        for (long i = 0; i < values; i++) {
          buf.putShort((short) (Float.floatToRawIntBits((float) rnd.nextGaussian()) >>> 16));
        }
      }
      case Q8_0 -> {
        for (long b = 0; b < values / 32; b++) {
          buf.putShort(Float.floatToFloat16(randomScale(rnd)));
          for (int j = 0; j < 32; j++) {
            buf.put((byte) rnd.nextInt(256));
          }
        }
      }
      case Q4_0 -> {
        for (long b = 0; b < values / 32; b++) {
          buf.putShort(Float.floatToFloat16(randomScale(rnd)));
          for (int j = 0; j < 16; j++) {
            buf.put((byte) rnd.nextInt(256));
          }
        }
      }
      case Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K -> {
        byte[] all = new byte[size];
        rnd.nextBytes(all);
        buf.put(all);
        for (int bo = 0; bo < size; bo += type.blockBytes()) {
          for (int at : scaleOffsets(type)) {
            buf.putShort(bo + at, Float.floatToFloat16(randomScale(rnd)));
          }
        }
      }
      default -> throw new AssertionError(type);
    }
    int pad = 3;
    byte[] backing = new byte[size + pad + 5];
    System.arraycopy(buf.array(), 0, backing, pad, size);
    MemorySegment data = MemorySegment.ofArray(backing).asSlice(pad, size).asReadOnly();
    return Tensors.of(type, rows, cols, data);
  }

  /** Byte offsets of the fp16 scales (d, and dmin/m where present) in a block of {@code type}. */
  static int[] scaleOffsets(DType type) {
    return switch (type) {
      case Q5_0 -> new int[] {0};
      case Q5_1, Q4_K, Q5_K -> new int[] {0, 2};
      case Q2_K -> new int[] {80, 82};
      case Q3_K -> new int[] {108};
      case Q6_K -> new int[] {208};
      default -> throw new AssertionError(type);
    };
  }

  /** Group sizes exercised for I4: vector-path sizes and one that forces the scalar path. */
  static final int[] I4_GROUPS = {32, 64, 128, 6};

  /**
   * Random I8 / I4 / FP8 tensor with random codes (all finite for FP8), random scales, and for I4 a
   * random group size and, half the time, random zero points. Codes sit at an odd offset,
   * read-only.
   */
  static Tensor randomQuant(DType type, int rows, int cols, Random rnd) {
    int size = (int) type.byteSize(rows, cols);
    byte[] backing = new byte[size + 8];
    for (int i = 3; i < 3 + size; i++) {
      int code = rnd.nextInt(256);
      if (type == DType.F8_E4M3 || type == DType.F8_E5M2) {
        while (!Float.isFinite(Fp8Codes.decode(type, code))) {
          code = rnd.nextInt(256);
        }
      }
      backing[i] = (byte) code;
    }
    MemorySegment codes = MemorySegment.ofArray(backing).asSlice(3, size).asReadOnly();
    return switch (type) {
      case I8 -> Tensors.int8(rows, cols, codes, randomScales(rows, rnd));
      case F8_E4M3, F8_E5M2 ->
          Tensors.fp8(type, rows, cols, codes, randomScales(rnd.nextInt(4) == 0 ? 1 : rows, rnd));
      case I4 -> {
        int g = I4_GROUPS[rnd.nextInt(I4_GROUPS.length)];
        int groups = rows * ((cols + g - 1) / g);
        byte[] zeros = null;
        if (rnd.nextBoolean()) {
          zeros = new byte[groups];
          for (int i = 0; i < groups; i++) {
            zeros[i] = (byte) rnd.nextInt(16);
          }
        }
        yield Tensors.int4(rows, cols, g, codes, randomScales(groups, rnd), zeros);
      }
      default -> throw new AssertionError(type);
    };
  }

  private static float[] randomScales(int n, Random rnd) {
    float[] s = new float[n];
    for (int i = 0; i < n; i++) {
      s[i] = randomScale(rnd);
    }
    return s;
  }

  /** Scales of both signs over several orders of magnitude. */
  static float randomScale(Random rnd) {
    float magnitude = (float) Math.pow(2, -12 + rnd.nextInt(12)) * (1 + rnd.nextFloat());
    return rnd.nextBoolean() ? magnitude : -magnitude;
  }

  static float[] randomInput(int n, Random rnd) {
    float[] x = new float[n];
    for (int i = 0; i < n; i++) {
      x[i] = (float) rnd.nextGaussian();
    }
    return x;
  }

  /** {@code sum_c W[r][c] * x[xOff + c]} in double from the exact decoded values. */
  static double dotReference(Tensor w, int r, float[] x, int xOff) {
    double sum = 0;
    for (int c = 0; c < w.cols(); c++) {
      sum += (double) w.get(r, c) * x[xOff + c];
    }
    return sum;
  }

  /** {@code sum_c |W[r][c] * x[xOff + c]|} in double. */
  static double absDot(Tensor w, int r, float[] x, int xOff) {
    double sum = 0;
    for (int c = 0; c < w.cols(); c++) {
      sum += Math.abs((double) w.get(r, c) * x[xOff + c]);
    }
    return sum;
  }
}
