package io.kvant.reload;

import io.kvant.engine.model.Weight;
import io.kvant.engine.tensor.DType;
import io.kvant.engine.tensor.Tensor;
import io.kvant.engine.tensor.Tensors;
import io.kvant.quant.artifact.Digests;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Conversions between published tensor bytes (F32, F16, BF16, little-endian) and the engine's
 * values, and the digests the manifest records: sha256 of a tensor's raw bytes as published.
 */
final class TensorData {
  private static final ValueLayout.OfFloat F32 =
      ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfShort I16 =
      ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  private TensorData() {}

  /** Decodes {@code count} elements of {@code dtype} to floats. */
  static float[] decode(MemorySegment src, String dtype, int count) {
    float[] out = new float[count];
    switch (dtype) {
      case "F32" -> MemorySegment.copy(src, F32, 0, out, 0, count);
      case "F16" -> {
        for (int i = 0; i < count; i++) {
          out[i] = Float.float16ToFloat(src.getAtIndex(I16, i));
        }
      }
      case "BF16" -> {
        for (int i = 0; i < count; i++) {
          out[i] = Float.intBitsToFloat((src.getAtIndex(I16, i) & 0xffff) << 16);
        }
      }
      default -> throw new IllegalArgumentException("dtype " + dtype);
    }
    return out;
  }

  /** Index of the first NaN or infinite value, or -1. */
  static int firstNonFinite(float[] v) {
    for (int i = 0; i < v.length; i++) {
      if (!Float.isFinite(v[i])) {
        return i;
      }
    }
    return -1;
  }

  /** An F32 tensor on the heap holding {@code v} (row-major). */
  static Tensor f32(float[] v, int rows, int cols) {
    byte[] b = new byte[v.length * 4];
    ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().put(v);
    return Tensors.of(DType.F32, rows, cols, MemorySegment.ofArray(b));
  }

  /** Little-endian F32 bytes of {@code v}. */
  static byte[] f32Bytes(float[] v) {
    byte[] b = new byte[v.length * 4];
    ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().put(v);
    return b;
  }

  /** All values of a tensor, row-major. */
  static float[] values(Tensor t) {
    return new Weight.Matrix(t).values();
  }

  /**
   * The digest a manifest would record for {@code w} published as F32 (the dtype of a model loaded
   * in full precision).
   */
  static String digestAsF32(Weight w) {
    return switch (w) {
      case Weight.Vector v -> Digests.sha256(f32Bytes(v.values()));
      // F16/BF16/quantized values published as F32 are their decoded values: the same digest
      // whatever storage the serving copy uses, so an unchanged tensor is seen as unchanged.
      case Weight.Matrix m ->
          m.tensor().dtype() == DType.F32
              ? Digests.sha256(m.tensor().data())
              : Digests.sha256(f32Bytes(m.values()));
    };
  }
}
