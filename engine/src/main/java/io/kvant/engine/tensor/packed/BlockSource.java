package io.kvant.engine.tensor.packed;

import io.kvant.engine.tensor.DType;
import io.kvant.engine.tensor.Int4Tensor;
import io.kvant.engine.tensor.Int8Tensor;
import io.kvant.engine.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * A quantized tensor read as blocks of 32 columns, each {@code scale * (small integer)}: the one
 * view packing needs of every supported storage type. Reads the tensor's own bytes directly (a 1B
 * model has over a billion weights to repack; going through {@link Tensor#get} would decode each to
 * float first).
 */
abstract class BlockSource {
  static final ValueLayout.OfShort SHORT_LE =
      ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  final int rows;
  final int cols;

  BlockSource(int rows, int cols) {
    this.rows = rows;
    this.cols = cols;
  }

  /** Blocks per row. */
  final int blocks() {
    return cols / QuantizedInput.BLOCK;
  }

  /** Scale of block {@code k} of row {@code r}. */
  abstract float scale(int r, int k);

  /** The 32 integer values of block {@code k} of row {@code r} into {@code dst[0..32)}. */
  abstract void values(int r, int k, int[] dst);

  /** Whether every value is in {@code [-8, 7]} (so it fits a signed nibble). */
  abstract boolean fitsNibble();

  /**
   * Whether every block scale is a finite F16 value, so that storing it in 2 bytes and converting
   * back gives the same float bits (then the kernels read F16 scales: fewer bytes per token).
   */
  boolean scalesAreHalf() {
    for (int r = 0; r < rows; r++) {
      for (int k = 0; k < blocks(); k++) {
        if (!isHalf(scale(r, k))) {
          return false;
        }
      }
    }
    return true;
  }

  /** Whether {@code s} is a finite F16 value (its float bits survive the round trip). */
  static boolean isHalf(float s) {
    return Float.isFinite(s)
        && Float.floatToRawIntBits(Float.float16ToFloat(Float.floatToFloat16(s)))
            == Float.floatToRawIntBits(s);
  }

  /** A source for {@code t}, or {@code null} if its type or shape has no integer kernel. */
  static BlockSource of(Tensor t) {
    if (t.cols() % QuantizedInput.BLOCK != 0) {
      return null;
    }
    return switch (t.dtype()) {
      case Q8_0 -> new Ggml(t, false);
      case Q4_0 -> new Ggml(t, true);
      case I8 -> new PerRowInt8((Int8Tensor) t);
      case I4 -> {
        Int4Tensor i4 = (Int4Tensor) t;
        yield i4.groupSize() % QuantizedInput.BLOCK == 0 ? new GroupInt4(i4) : null;
      }
      default -> null;
    };
  }

  /** ggml Q8_0 / Q4_0 blocks: an fp16 scale, then 32 int8 or 16 bytes of nibbles. */
  private static final class Ggml extends BlockSource {
    private final MemorySegment data;
    private final boolean nibbles;
    private final int blockBytes;

    Ggml(Tensor t, boolean nibbles) {
      super(t.rows(), t.cols());
      this.data = t.data();
      this.nibbles = nibbles;
      this.blockBytes = nibbles ? DType.Q4_0.blockBytes() : DType.Q8_0.blockBytes();
    }

    private long at(int r, int k) {
      return ((long) r * blocks() + k) * blockBytes;
    }

    @Override
    float scale(int r, int k) {
      return Float.float16ToFloat(data.get(SHORT_LE, at(r, k)));
    }

    @Override
    void values(int r, int k, int[] dst) {
      long o = at(r, k) + 2;
      if (nibbles) {
        for (int j = 0; j < 16; j++) {
          int b = data.get(ValueLayout.JAVA_BYTE, o + j) & 0xFF;
          dst[j] = (b & 0xF) - 8;
          dst[j + 16] = (b >>> 4) - 8;
        }
      } else {
        for (int j = 0; j < 32; j++) {
          dst[j] = data.get(ValueLayout.JAVA_BYTE, o + j);
        }
      }
    }

    @Override
    boolean fitsNibble() {
      return nibbles;
    }

    /** The scales are F16 in the file: all of them unless one is an infinity or a NaN. */
    @Override
    boolean scalesAreHalf() {
      long n = (long) rows * blocks();
      for (long b = 0; b < n; b++) {
        if ((data.get(SHORT_LE, b * blockBytes) & 0x7C00) == 0x7C00) {
          return false;
        }
      }
      return true;
    }
  }

  /** INT8 per-channel: every block of a row has the row's scale. */
  private static final class PerRowInt8 extends BlockSource {
    private final Int8Tensor t;
    private final MemorySegment data;

    PerRowInt8(Int8Tensor t) {
      super(t.rows(), t.cols());
      this.t = t;
      this.data = t.data();
    }

    @Override
    float scale(int r, int k) {
      return t.scale(r);
    }

    @Override
    void values(int r, int k, int[] dst) {
      long o = (long) r * cols + (long) k * 32;
      for (int j = 0; j < 32; j++) {
        dst[j] = data.get(ValueLayout.JAVA_BYTE, o + j);
      }
    }

    @Override
    boolean fitsNibble() {
      return false;
    }

    @Override
    boolean scalesAreHalf() {
      for (int r = 0; r < rows; r++) {
        if (!isHalf(t.scale(r))) {
          return false;
        }
      }
      return true;
    }
  }

  /** INT4 group-wise with groups a multiple of 32: {@code code - zero}, in {@code [-15, 15]}. */
  private static final class GroupInt4 extends BlockSource {
    private final Int4Tensor t;
    private final float[] scales;
    private final byte[] zeros;
    private final int perGroup;

    GroupInt4(Int4Tensor t) {
      super(t.rows(), t.cols());
      this.t = t;
      this.scales = t.scales();
      this.zeros = t.zeroPoints();
      this.perGroup = t.groupSize() / QuantizedInput.BLOCK;
    }

    @Override
    float scale(int r, int k) {
      return scales[r * t.groupsPerRow() + k / perGroup];
    }

    @Override
    void values(int r, int k, int[] dst) {
      int z = zeros[r * t.groupsPerRow() + k / perGroup];
      for (int j = 0; j < 32; j++) {
        dst[j] = t.code(r, k * 32 + j) - z;
      }
    }

    @Override
    boolean fitsNibble() {
      return !t.asymmetric();
    }
  }
}
