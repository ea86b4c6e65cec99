package io.kvant.quant.encoding;

import java.util.Objects;

/**
 * The quantization encoding of one weight tensor, in AIMET's terms: for unit {@code i} (the whole
 * tensor, an output channel, or a block of {@code blockSize} input columns of a channel, row-major)
 * a dequantized value is {@code (q + offset[i]) * scale[i]} with the unsigned integer code {@code q
 * in [0, 2^bitwidth)}; {@code min = offset * scale}, {@code max = (2^bitwidth - 1 + offset) *
 * scale}. kvant's codes map as: INT8 {@code q = int8 + 128}, offset -128; INT4 {@code q = nibble},
 * offset {@code -zero}. FP8 ({@code dtype FLOAT}, bitwidth 8) has {@code value = scale * fp8(q)},
 * offset 0 and {@code max = -min = scale * largest finite}.
 *
 * @param name tensor name (kvant's GGUF-style names, e.g. {@code blk.0.attn_q.weight})
 * @param format storage format
 * @param granularity unit layout
 * @param blockSize input columns per block for {@link Granularity#PER_BLOCK}, else 0; a row's last
 *     block is partial when {@code cols} is not a multiple
 * @param rows output channels of the tensor
 * @param cols input columns of the tensor
 * @param scale one per unit
 * @param offset one per unit
 */
public record TensorEncoding(
    String name,
    WeightFormat format,
    boolean symmetric,
    Granularity granularity,
    int blockSize,
    int rows,
    int cols,
    float[] scale,
    int[] offset) {

  /** How units cover the tensor. */
  public enum Granularity {
    PER_TENSOR,
    PER_CHANNEL,
    PER_BLOCK
  }

  /**
   * Validates shapes and values.
   *
   * @throws IllegalArgumentException naming the tensor and the problem
   */
  public TensorEncoding {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(format, "format");
    Objects.requireNonNull(granularity, "granularity");
    if (rows <= 0 || cols <= 0) {
      throw bad(name, "shape must be positive, got " + rows + "x" + cols);
    }
    if (granularity == Granularity.PER_BLOCK && blockSize <= 0) {
      throw bad(name, "PER_BLOCK needs a positive block_size, got " + blockSize);
    }
    long units =
        switch (granularity) {
          case PER_TENSOR -> 1;
          case PER_CHANNEL -> rows;
          case PER_BLOCK -> (long) rows * ((cols + blockSize - 1) / blockSize);
        };
    if (scale.length != units || offset.length != units) {
      throw bad(
          name,
          granularity
              + " over "
              + rows
              + "x"
              + cols
              + (blockSize > 0 ? " with block_size " + blockSize : "")
              + " needs "
              + units
              + " scales and offsets, got "
              + scale.length
              + " and "
              + offset.length);
    }
    int levels = 1 << format.bits();
    for (int i = 0; i < scale.length; i++) {
      if (!Float.isFinite(scale[i]) || scale[i] < 0) {
        throw bad(name, "scale " + i + " is " + scale[i] + " (must be finite and >= 0)");
      }
      boolean fp = format == WeightFormat.FP8_E4M3 || format == WeightFormat.FP8_E5M2;
      if (fp ? offset[i] != 0 : offset[i] > 0 || offset[i] < -(levels - 1)) {
        throw bad(name, "offset " + i + " is " + offset[i] + ", outside the code range");
      }
    }
    switch (format) {
      case INT8 -> {
        if (granularity != Granularity.PER_CHANNEL && granularity != Granularity.PER_TENSOR) {
          throw bad(name, "int8 weights are per-channel");
        }
        for (int o : offset) {
          if (o != -128) {
            throw bad(name, "int8 weights are symmetric: offset must be -128, got " + o);
          }
        }
      }
      case INT4 -> {
        if (granularity == Granularity.PER_BLOCK && blockSize % 2 != 0) {
          throw bad(name, "int4 block_size must be even, got " + blockSize);
        }
      }
      case FP8_E4M3, FP8_E5M2 -> {
        if (granularity == Granularity.PER_BLOCK) {
          throw bad(name, "fp8 weights are per-channel or per-tensor");
        }
      }
      default -> throw bad(name, "format " + format + " has no encoding");
    }
    scale = scale.clone();
    offset = offset.clone();
  }

  private static IllegalArgumentException bad(String name, String msg) {
    return new IllegalArgumentException("encoding of '" + name + "': " + msg);
  }

  @Override
  public float[] scale() {
    return scale.clone();
  }

  @Override
  public int[] offset() {
    return offset.clone();
  }

  /** Number of units. */
  public int units() {
    return scale.length;
  }

  /** Bit width of the codes. */
  public int bitwidth() {
    return format.bits();
  }

  /** AIMET's {@code min} of unit {@code i}. */
  public double min(int i) {
    if (format == WeightFormat.FP8_E4M3 || format == WeightFormat.FP8_E5M2) {
      return -max(i);
    }
    return (double) offset[i] * scale[i];
  }

  /** AIMET's {@code max} of unit {@code i}. */
  public double max(int i) {
    if (format == WeightFormat.FP8_E4M3 || format == WeightFormat.FP8_E5M2) {
      return (double) scale[i]
          * io.kvant.engine.tensor.Fp8Codes.maxFinite(
              format == WeightFormat.FP8_E4M3
                  ? io.kvant.engine.tensor.DType.F8_E4M3
                  : io.kvant.engine.tensor.DType.F8_E5M2);
    }
    return ((double) (1 << format.bits()) - 1 + offset[i]) * scale[i];
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof TensorEncoding e
        && name.equals(e.name)
        && format == e.format
        && symmetric == e.symmetric
        && granularity == e.granularity
        && blockSize == e.blockSize
        && rows == e.rows
        && cols == e.cols
        && java.util.Arrays.equals(scale, e.scale)
        && java.util.Arrays.equals(offset, e.offset);
  }

  @Override
  public int hashCode() {
    return Objects.hash(name, format, granularity, rows, cols, java.util.Arrays.hashCode(scale));
  }

  @Override
  public String toString() {
    return "TensorEncoding["
        + name
        + " "
        + format
        + " "
        + granularity
        + " "
        + rows
        + "x"
        + cols
        + "]";
  }
}
