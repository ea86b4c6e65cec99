package io.kvant.engine.tensor;

import static io.kvant.engine.tensor.DotKernel.F;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link DType#I4} tensor: INT4 group-wise, symmetric or asymmetric. Each row's columns are cut
 * into groups of {@link #groupSize()} input columns; the last group of a row is partial when {@code
 * cols} is not a multiple of the group size (stories260K's FFN width 172 with groups of 32 ends in
 * a group of 12). Every group has a float32 scale and, when asymmetric, a uint8 zero point in
 * {@code [0, 15]} (symmetric groups use zero point 8, so codes {@code 0..15} mean {@code -8..7}):
 * {@code W[r][c] = scale[r][g] * (code - zero[r][g])}.
 *
 * <p>Layout of {@link #data()}: a row is {@code ceil(cols/2)} bytes; group {@code g} starts at byte
 * {@code g * groupSize / 2} of its row. In a group of {@code len} columns with {@code h =
 * ceil(len/2)}, element {@code j < h} is the low nibble of the group's byte {@code j} and element
 * {@code h + j} its high nibble (the ggml Q4_0 order, generalised to any even group size; a group
 * of odd length leaves the last high nibble unused). Scales (and zero points) are {@code [rows][
 * ceil(cols/groupSize)]}, row-major.
 *
 * <p>Design note: a full group is decoded with byte vectors: a lane-wise {@code and 0xF} and {@code
 * >>> 4} split the nibbles, the zero point is subtracted in byte lanes (exact), the bytes are
 * widened to float ({@code B2F}) and multiplied by the broadcast scale. The partial group and group
 * sizes whose half is not a multiple of the byte vector use the scalar loop. Both compute the same
 * single product {@code scale * (float) (code - zero)}, so they match {@link #get} bit for bit.
 */
public final class Int4Tensor extends BaseTensor implements Tensor {
  private static final VectorSpecies<Byte> B =
      VectorSpecies.of(byte.class, VectorShape.forBitSize(Math.max(64, F.length() * 8)));
  private static final int PARTS = B.length() / F.length();
  private static final byte SYMMETRIC_ZERO = 8;

  private final int groupSize;
  private final int groups;
  private final int rowBytes;
  private final float[] scales;
  private final byte[] zeros;
  private final boolean vectorGroups;
  private final boolean wholeGroups;

  Int4Tensor(int rows, int cols, int groupSize, MemorySegment data, float[] scales, byte[] zeros) {
    super(DType.I4, rows, cols, data);
    if (groupSize < 2 || groupSize % 2 != 0) {
      throw new IllegalArgumentException("I4 group size must be even and >= 2, got " + groupSize);
    }
    this.groupSize = groupSize;
    this.groups = (cols + groupSize - 1) / groupSize;
    this.rowBytes = (cols + 1) / 2;
    this.scales = Tensors.checkScales("I4 group scales", scales, (long) rows * groups);
    if (zeros != null) {
      if (zeros.length != (long) rows * groups) {
        throw new IllegalArgumentException(
            "I4 zero points: expected " + (long) rows * groups + ", got " + zeros.length);
      }
      for (int i = 0; i < zeros.length; i++) {
        if (zeros[i] < 0 || zeros[i] > 15) {
          throw new IllegalArgumentException(
              "I4 zero point " + i + " is " + zeros[i] + ", outside [0, 15]");
        }
      }
      this.zeros = zeros.clone();
    } else {
      this.zeros = null;
    }
    this.vectorGroups = (groupSize / 2) % B.length() == 0;
    this.wholeGroups = vectorGroups && cols % groupSize == 0;
  }

  @Override
  public DType dtype() {
    return DType.I4;
  }

  /** Input columns per group (the last group of a row may be shorter). */
  public int groupSize() {
    return groupSize;
  }

  /** Groups per row, {@code ceil(cols / groupSize)}. */
  public int groupsPerRow() {
    return groups;
  }

  /** Whether groups carry zero points (asymmetric). */
  public boolean asymmetric() {
    return zeros != null;
  }

  /** A copy of the scales, {@code [rows][groupsPerRow]} row-major. */
  public float[] scales() {
    return scales.clone();
  }

  /** A copy of the zero points, {@code [rows][groupsPerRow]}; all 8 when symmetric. */
  public byte[] zeroPoints() {
    if (zeros != null) {
      return zeros.clone();
    }
    byte[] z = new byte[scales.length];
    java.util.Arrays.fill(z, SYMMETRIC_ZERO);
    return z;
  }

  /** The 4-bit code (0..15) of {@code W[row][col]}. */
  public int code(int row, int col) {
    java.util.Objects.checkIndex(row, rows);
    java.util.Objects.checkIndex(col, cols);
    return codeUnchecked(row, col);
  }

  @Override
  public long storageBytes() {
    return byteSize() + 4L * scales.length + (zeros == null ? 0 : zeros.length);
  }

  private int codeUnchecked(int row, int col) {
    int g = col / groupSize;
    int j = col - g * groupSize;
    int len = Math.min(groupSize, cols - g * groupSize);
    int h = (len + 1) / 2;
    long at = (long) row * rowBytes + (long) g * (groupSize / 2) + (j < h ? j : j - h);
    int b = data.get(ValueLayout.JAVA_BYTE, at) & 0xFF;
    return j < h ? b & 0xF : b >>> 4;
  }

  private int zero(int index) {
    return zeros == null ? SYMMETRIC_ZERO : zeros[index];
  }

  @Override
  float getUnchecked(int row, int col) {
    int index = row * groups + col / groupSize;
    return scales[index] * (float) (codeUnchecked(row, col) - zero(index));
  }

  @Override
  void decodeRows(int row, int n, float[] dst, int off) {
    int half = groupSize / 2;
    if (wholeGroups) {
      // Rows hold whole groups only: the n rows are one contiguous run of groups.
      int total = n * groups;
      long base = (long) row * rowBytes;
      int first = row * groups;
      for (int k = 0; k < total; k++) {
        decodeGroupVector(
            base + (long) k * half,
            half,
            scales[first + k],
            zero(first + k),
            dst,
            off + k * groupSize);
      }
      return;
    }
    for (int i = 0; i < n; i++) {
      int r = row + i;
      long rowBase = (long) r * rowBytes;
      int rowOff = off + i * cols;
      int index = r * groups;
      for (int g = 0; g < groups; g++, index++) {
        int start = g * groupSize;
        long gb = rowBase + (long) g * half;
        int len = Math.min(groupSize, cols - start);
        if (len == groupSize && vectorGroups) {
          decodeGroupVector(gb, half, scales[index], zero(index), dst, rowOff + start);
        } else {
          decodeGroupScalar(gb, len, scales[index], zero(index), dst, rowOff + start);
        }
      }
    }
  }

  /**
   * A full group with byte vectors; kept small so that C2 inlines it and keeps vectors in
   * registers.
   */
  private void decodeGroupVector(long gb, int half, float s, int z, float[] dst, int o) {
    FloatVector sv = FloatVector.broadcast(F, s);
    ByteVector zb = ByteVector.broadcast(B, (byte) z);
    for (int j = 0; j < half; j += B.length()) {
      ByteVector packed = ByteVector.fromMemorySegment(B, data, gb + j, ByteOrder.LITTLE_ENDIAN);
      ByteVector lo = packed.and((byte) 0x0F).sub(zb);
      ByteVector hi = packed.lanewise(VectorOperators.LSHR, 4).sub(zb);
      for (int p = 0; p < PARTS; p++) {
        int at = o + j + p * F.length();
        ((FloatVector) lo.convertShape(VectorOperators.B2F, F, p)).mul(sv).intoArray(dst, at);
        ((FloatVector) hi.convertShape(VectorOperators.B2F, F, p))
            .mul(sv)
            .intoArray(dst, at + half);
      }
    }
  }

  private void decodeGroupScalar(long gb, int len, float s, int z, float[] dst, int o) {
    int h = (len + 1) / 2;
    for (int j = 0; j < h; j++) {
      int b = data.get(ValueLayout.JAVA_BYTE, gb + j) & 0xFF;
      dst[o + j] = s * (float) ((b & 0xF) - z);
      if (h + j < len) {
        dst[o + h + j] = s * (float) ((b >>> 4) - z);
      }
    }
  }
}
