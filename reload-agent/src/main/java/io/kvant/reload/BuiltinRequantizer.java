package io.kvant.reload;

import io.kvant.engine.tensor.DType;
import io.kvant.engine.tensor.Tensor;
import io.kvant.engine.tensor.Tensors;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.List;

/**
 * The agent's own recipes over the engine's block types, used until the quantization module's
 * recipes are wired in: {@code none} (serve as published), {@code w8} (layer matrices to Q8_0:
 * blocks of 32 with an fp16 absmax scale) and {@code w4} (Q4_0). Embeddings, norms and matrices
 * whose inputs are not a multiple of 32 stay in full precision.
 */
public final class BuiltinRequantizer implements Requantizer {
  private static final ValueLayout.OfShort I16 =
      ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  @Override
  public boolean knows(String recipe) {
    return recipe.equals("none") || recipe.equals("w8") || recipe.equals("w4");
  }

  @Override
  public boolean quantizes(String recipe, String name, Tensor fp) {
    return !recipe.equals("none") && WeightSlots.isLayerMatrix(name) && fp.cols() % 32 == 0;
  }

  @Override
  public Quantized quantize(String recipe, String name, Tensor fp, List<int[]> calibration) {
    float[] v = TensorData.values(fp);
    return switch (recipe) {
      case "w8" ->
          new Quantized(q8(v, fp.rows(), fp.cols()), 8, 32, "symmetric/per_block", "absmax");
      case "w4" ->
          new Quantized(q4(v, fp.rows(), fp.cols()), 4, 32, "symmetric/per_block", "absmax");
      default -> throw new IllegalArgumentException("recipe " + recipe + " does not quantize");
    };
  }

  static Tensor q8(float[] v, int rows, int cols) {
    int blocks = v.length / 32;
    MemorySegment seg = MemorySegment.ofArray(new byte[blocks * 34]);
    for (int b = 0; b < blocks; b++) {
      float amax = 0;
      for (int i = 0; i < 32; i++) {
        amax = Math.max(amax, Math.abs(v[b * 32 + i]));
      }
      short d16 = Float.floatToFloat16(amax / 127f);
      float d = Float.float16ToFloat(d16);
      seg.set(I16, b * 34L, d16);
      for (int i = 0; i < 32; i++) {
        int q = d == 0 ? 0 : Math.round(v[b * 32 + i] / d);
        seg.set(ValueLayout.JAVA_BYTE, b * 34L + 2 + i, (byte) Math.clamp(q, -127, 127));
      }
    }
    return Tensors.of(DType.Q8_0, rows, cols, seg);
  }

  static Tensor q4(float[] v, int rows, int cols) {
    int blocks = v.length / 32;
    MemorySegment seg = MemorySegment.ofArray(new byte[blocks * 18]);
    for (int b = 0; b < blocks; b++) {
      float max = 0;
      for (int i = 0; i < 32; i++) {
        if (Math.abs(v[b * 32 + i]) > Math.abs(max)) {
          max = v[b * 32 + i];
        }
      }
      short d16 = Float.floatToFloat16(max / -8f);
      float d = Float.float16ToFloat(d16);
      seg.set(I16, b * 18L, d16);
      for (int i = 0; i < 16; i++) {
        int lo = d == 0 ? 8 : Math.clamp(Math.round(v[b * 32 + i] / d) + 8, 0, 15);
        int hi = d == 0 ? 8 : Math.clamp(Math.round(v[b * 32 + 16 + i] / d) + 8, 0, 15);
        seg.set(ValueLayout.JAVA_BYTE, b * 18L + 2 + i, (byte) (lo | hi << 4));
      }
    }
    return Tensors.of(DType.Q4_0, rows, cols, seg);
  }
}
