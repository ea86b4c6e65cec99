package io.kvant.quant.quantize;

import io.kvant.engine.tensor.DType;
import io.kvant.engine.tensor.Tensor;
import io.kvant.engine.tensor.Tensors;
import io.kvant.quant.encoding.TensorEncoding;
import io.kvant.quant.encoding.TensorEncoding.Granularity;
import io.kvant.quant.encoding.WeightFormat;
import java.lang.foreign.MemorySegment;

/**
 * Quantizes a float weight matrix {@code w[rows][cols]} (row-major) into a kvant tensor type and
 * its {@link TensorEncoding}, or applies a given encoding (e.g. one made by AIMET) to it.
 *
 * <p>Both paths go through the same code assignment ({@link Grid#code}), so quantizing with
 * encodings read back from an {@code encodings.json} reproduces the tensor bit for bit.
 */
public final class WeightQuantizer {
  private WeightQuantizer() {}

  /** A quantized tensor and its encoding ({@code null} for FULL, Q4_0 and Q8_0). */
  public record Result(Tensor tensor, TensorEncoding encoding) {}

  /**
   * Quantizes {@code w} as {@code spec} says.
   *
   * @param importance optional per-input-column weights of the rounding error (mean squared
   *     activation), used by {@link Method#MSE} and {@link Method#AWQ}; {@code null} for uniform
   */
  public static Result quantize(
      String name, float[] w, int rows, int cols, QuantSpec spec, float[] importance) {
    return switch (spec.format()) {
      case FULL -> new Result(f32(w, rows, cols), null);
      case Q4_0 -> new Result(GgmlEncoders.q4_0(w, rows, cols), null);
      case Q8_0 -> new Result(GgmlEncoders.q8_0(w, rows, cols), null);
      case INT8, INT4, FP8_E4M3, FP8_E5M2 -> {
        TensorEncoding enc = chooseEncoding(name, w, rows, cols, spec, importance);
        yield new Result(apply(w, enc), enc);
      }
    };
  }

  /** Chooses scales and offsets for every unit of {@code w} with the spec's method. */
  public static TensorEncoding chooseEncoding(
      String name, float[] w, int rows, int cols, QuantSpec spec, float[] importance) {
    Grid grid = Grid.of(spec);
    Granularity gran;
    int block = 0;
    switch (spec.format()) {
      case INT4 -> {
        gran = Granularity.PER_BLOCK;
        block = spec.groupSize();
      }
      case FP8_E4M3, FP8_E5M2 ->
          gran = spec.perTensor() ? Granularity.PER_TENSOR : Granularity.PER_CHANNEL;
      default -> gran = Granularity.PER_CHANNEL;
    }
    int perRow = block == 0 ? 1 : (cols + block - 1) / block;
    int units = gran == Granularity.PER_TENSOR ? 1 : rows * perRow;
    float[] scale = new float[units];
    int[] offset = new int[units];
    float[] sz = new float[2];
    for (int u = 0; u < units; u++) {
      int off;
      int len;
      int col0;
      if (gran == Granularity.PER_TENSOR) {
        off = 0;
        len = rows * cols;
        col0 = 0;
      } else {
        int r = u / perRow;
        int g = u % perRow;
        col0 = block == 0 ? 0 : g * block;
        len = block == 0 ? cols : Math.min(block, cols - col0);
        off = r * cols + col0;
      }
      RangeSearch.choose(grid, spec, w, off, len, col0, cols, importance, sz);
      scale[u] = sz[0];
      offset[u] = offsetOf(spec.format(), (int) sz[1]);
    }
    return new TensorEncoding(
        name, spec.format(), spec.symmetric(), gran, block, rows, cols, scale, offset);
  }

  private static int offsetOf(WeightFormat f, int zero) {
    return switch (f) {
      case INT8 -> -128;
      case INT4 -> -zero;
      default -> 0;
    };
  }

  /**
   * Quantizes {@code w} with the scales and offsets of {@code enc} (codes by round-to-nearest and
   * clamping) and builds the tensor.
   *
   * @throws IllegalArgumentException if {@code w} does not have {@code enc.rows() * enc.cols()}
   *     elements
   */
  public static Tensor apply(float[] w, TensorEncoding enc) {
    int rows = enc.rows();
    int cols = enc.cols();
    if (w.length != (long) rows * cols) {
      throw new IllegalArgumentException(
          "encoding of '"
              + enc.name()
              + "' is for "
              + rows
              + "x"
              + cols
              + ", weights have "
              + w.length);
    }
    float[] scale = enc.scale();
    int[] offset = enc.offset();
    return switch (enc.format()) {
      case INT8 -> {
        Grid g = new Grid.Int8();
        byte[] q = new byte[rows * cols];
        float[] rowScale = new float[rows];
        for (int r = 0; r < rows; r++) {
          float s = scale[enc.granularity() == Granularity.PER_TENSOR ? 0 : r];
          rowScale[r] = s;
          for (int c = 0; c < cols; c++) {
            q[r * cols + c] = (byte) g.code(w[r * cols + c], s, 0);
          }
        }
        yield Tensors.int8(rows, cols, MemorySegment.ofArray(q), rowScale);
      }
      case INT4 -> {
        Grid g = new Grid.Int4Sym();
        int block =
            switch (enc.granularity()) {
              case PER_BLOCK -> enc.blockSize();
              default -> evenCeil(cols);
            };
        int perRow = (cols + block - 1) / block;
        float[] s = new float[rows * perRow];
        byte[] zeros = new byte[rows * perRow];
        boolean allEight = true;
        for (int i = 0; i < s.length; i++) {
          int unit =
              switch (enc.granularity()) {
                case PER_TENSOR -> 0;
                case PER_CHANNEL -> i / perRow;
                case PER_BLOCK -> i;
              };
          s[i] = scale[unit];
          zeros[i] = (byte) -offset[unit];
          allEight &= zeros[i] == 8;
        }
        int rowBytes = (cols + 1) / 2;
        byte[] packed = new byte[rows * rowBytes];
        for (int r = 0; r < rows; r++) {
          for (int gi = 0; gi < perRow; gi++) {
            int start = gi * block;
            int len = Math.min(block, cols - start);
            int h = (len + 1) / 2;
            float sc = s[r * perRow + gi];
            int z = zeros[r * perRow + gi];
            int base = r * rowBytes + gi * (block / 2);
            for (int j = 0; j < len; j++) {
              int code = g.code(w[r * cols + start + j], sc, z);
              if (j < h) {
                packed[base + j] |= (byte) code;
              } else {
                packed[base + j - h] |= (byte) (code << 4);
              }
            }
          }
        }
        yield Tensors.int4(
            rows,
            cols,
            block,
            MemorySegment.ofArray(packed),
            s,
            allEight && enc.symmetric() ? null : zeros);
      }
      case FP8_E4M3, FP8_E5M2 -> {
        DType t = enc.format() == WeightFormat.FP8_E4M3 ? DType.F8_E4M3 : DType.F8_E5M2;
        Grid g = new Grid.Fp8(t);
        byte[] q = new byte[rows * cols];
        for (int r = 0; r < rows; r++) {
          float sc = scale[enc.granularity() == Granularity.PER_TENSOR ? 0 : r];
          for (int c = 0; c < cols; c++) {
            q[r * cols + c] = (byte) g.code(w[r * cols + c], sc, 0);
          }
        }
        float[] scales =
            enc.granularity() == Granularity.PER_TENSOR ? new float[] {scale[0]} : scale;
        yield Tensors.fp8(t, rows, cols, MemorySegment.ofArray(q), scales);
      }
      default -> throw new IllegalArgumentException("cannot apply an encoding of " + enc.format());
    };
  }

  private static int evenCeil(int n) {
    return (n + 1) & ~1;
  }

  /** A heap F32 tensor holding {@code w}. */
  public static Tensor f32(float[] w, int rows, int cols) {
    MemorySegment seg = MemorySegment.ofArray(new byte[w.length * 4]);
    MemorySegment.copy(
        w,
        0,
        seg,
        java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(
            java.nio.ByteOrder.LITTLE_ENDIAN),
        0,
        w.length);
    return Tensors.of(DType.F32, rows, cols, seg);
  }

  /** All elements of {@code t} as a row-major float array. */
  public static float[] dequantize(Tensor t) {
    float[] out = new float[t.rows() * t.cols()];
    for (int r = 0; r < t.rows(); r++) {
      t.dequantizeRow(r, out, r * t.cols());
    }
    return out;
  }
}
