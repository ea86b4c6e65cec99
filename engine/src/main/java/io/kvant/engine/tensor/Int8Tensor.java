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
 * {@link DType#I8} tensor: INT8 per-channel (per output row) symmetric. {@link #data()} holds
 * {@code rows * cols} int8 codes, row-major; a float32 scale per row is kept beside it: {@code
 * W[r][c] = scale[r] * q[r][c]}.
 *
 * <p>Design note: the decoder loads a run of int8 codes as one byte vector (at least 64 bits),
 * widens each part to float lanes ({@code B2F}) and multiplies by the row's broadcast scale;
 * columns past the last whole vector are decoded by the scalar loop. Both paths compute the same
 * single float product {@code scale * (float) q}, so they agree bit for bit with {@link #get}.
 * Unlike {@link DType#Q8_0} there are no 32-column blocks: any {@code cols} works and a row costs
 * {@code cols} bytes plus one scale.
 */
public final class Int8Tensor extends BaseTensor implements Tensor {
  private static final VectorSpecies<Byte> B =
      VectorSpecies.of(byte.class, VectorShape.forBitSize(Math.max(64, F.length() * 8)));
  private static final int PARTS = B.length() / F.length();

  private final float[] scales;

  Int8Tensor(int rows, int cols, MemorySegment data, float[] scales) {
    super(DType.I8, rows, cols, data);
    this.scales = Tensors.checkScales("I8 per-row scales", scales, rows);
  }

  @Override
  public DType dtype() {
    return DType.I8;
  }

  /** The scale of output row {@code row}. */
  public float scale(int row) {
    return scales[row];
  }

  /** A copy of the per-row scales. */
  public float[] scales() {
    return scales.clone();
  }

  @Override
  public long storageBytes() {
    return byteSize() + 4L * scales.length;
  }

  @Override
  float getUnchecked(int row, int col) {
    return scales[row] * data.get(ValueLayout.JAVA_BYTE, (long) row * cols + col);
  }

  @Override
  void decodeRows(int row, int n, float[] dst, int off) {
    int upper = cols - cols % B.length();
    for (int i = 0; i < n; i++) {
      int r = row + i;
      long base = (long) r * cols;
      int o = off + i * cols;
      float s = scales[r];
      FloatVector sv = FloatVector.broadcast(F, s);
      for (int c = 0; c < upper; c += B.length()) {
        ByteVector q = ByteVector.fromMemorySegment(B, data, base + c, ByteOrder.LITTLE_ENDIAN);
        for (int p = 0; p < PARTS; p++) {
          ((FloatVector) q.convertShape(VectorOperators.B2F, F, p))
              .mul(sv)
              .intoArray(dst, o + c + p * F.length());
        }
      }
      for (int c = upper; c < cols; c++) {
        dst[o + c] = s * data.get(ValueLayout.JAVA_BYTE, base + c);
      }
    }
  }
}
