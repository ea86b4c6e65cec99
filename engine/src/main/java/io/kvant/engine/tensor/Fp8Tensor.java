package io.kvant.engine.tensor;

import static io.kvant.engine.tensor.DotKernel.F;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link DType#F8_E4M3} / {@link DType#F8_E5M2} tensor: one OCP 8-bit float code per element,
 * row-major, times a float32 scale per row (per-channel) or one for all rows (per-tensor): {@code
 * W[r][c] = scale[r] * fp8(code)}.
 *
 * <p>E4M3 ("FN" variant: bias 7, no infinities, {@code S.1111.111} is NaN, largest finite 448) and
 * E5M2 (bias 15, IEEE-like: exponent 31 is infinity/NaN, largest finite 57344). Codes that are NaN
 * or infinite are rejected at construction, so every element is finite.
 *
 * <p>Design note: the scalar reference decodes through a 256-entry table built from the format
 * definition. The vector decoder uses bit tricks instead of a gather: a code's exponent and
 * mantissa bits, shifted into a binary32's exponent/mantissa fields ({@code << 20} for E4M3, {@code
 * << 21} for E5M2) with the sign moved to bit 31, read as a float equal to the FP8 value times
 * {@code 2^-(127 - bias)}, for normal and subnormal codes alike (an FP8 subnormal lands on a
 * binary32 subnormal); one multiplication by {@code 2^(127 - bias)} is exact and gives the table
 * value. Then both paths multiply once by the scale, so they agree bit for bit.
 */
public final class Fp8Tensor extends BaseTensor implements Tensor {
  private static final VectorSpecies<Byte> B =
      VectorSpecies.of(byte.class, VectorShape.forBitSize(Math.max(64, F.length() * 8)));
  private static final VectorSpecies<Integer> I =
      VectorSpecies.of(int.class, VectorShape.forBitSize(F.vectorBitSize()));
  private static final int PARTS = B.length() / F.length();

  private final DType type;
  private final float[] scales;
  private final boolean perTensor;
  private final float[] table;
  private final int shift;
  private final float rebias;

  Fp8Tensor(DType type, int rows, int cols, MemorySegment data, float[] scales) {
    super(type, rows, cols, data);
    this.type = type;
    this.table = Fp8Codes.table(type);
    this.shift = type == DType.F8_E4M3 ? 20 : 21;
    this.rebias = type == DType.F8_E4M3 ? 0x1p120f : 0x1p112f;
    if (scales.length == 1 && rows != 1) {
      float[] all = new float[rows];
      java.util.Arrays.fill(all, scales[0]);
      this.scales = Tensors.checkScales(type + " scale", all, rows);
      this.perTensor = true;
    } else {
      this.scales = Tensors.checkScales(type + " per-row scales", scales, rows);
      this.perTensor = rows == 1;
    }
    long n = data.byteSize();
    for (long i = 0; i < n; i++) {
      int code = data.get(ValueLayout.JAVA_BYTE, i) & 0xFF;
      if (!Float.isFinite(table[code])) {
        throw new IllegalArgumentException(
            type + " code 0x" + Integer.toHexString(code) + " at element " + i + " is not finite");
      }
    }
  }

  @Override
  public DType dtype() {
    return type;
  }

  /** Whether one scale applies to all rows. */
  public boolean perTensor() {
    return perTensor;
  }

  /** A copy of the per-row scales (all equal when {@link #perTensor()}). */
  public float[] scales() {
    return scales.clone();
  }

  @Override
  public long storageBytes() {
    return byteSize() + 4L * (perTensor ? 1 : scales.length);
  }

  @Override
  float getUnchecked(int row, int col) {
    return scales[row] * table[data.get(ValueLayout.JAVA_BYTE, (long) row * cols + col) & 0xFF];
  }

  @Override
  void decodeRows(int row, int n, float[] dst, int off) {
    int upper = cols - cols % B.length();
    for (int i = 0; i < n; i++) {
      int r = row + i;
      long base = (long) r * cols;
      int o = off + i * cols;
      float s = scales[r];
      for (int c = 0; c < upper; c += B.length()) {
        ByteVector q = ByteVector.fromMemorySegment(B, data, base + c, ByteOrder.LITTLE_ENDIAN);
        for (int p = 0; p < PARTS; p++) {
          IntVector v = (IntVector) q.convertShape(VectorOperators.B2I, I, p);
          IntVector bits =
              v.and(0x7F)
                  .lanewise(VectorOperators.LSHL, shift)
                  .or(v.and(0x80).lanewise(VectorOperators.LSHL, 24));
          bits.reinterpretAsFloats().mul(rebias).mul(s).intoArray(dst, o + c + p * F.length());
        }
      }
      for (int c = upper; c < cols; c++) {
        dst[o + c] = s * table[data.get(ValueLayout.JAVA_BYTE, base + c) & 0xFF];
      }
    }
  }
}
