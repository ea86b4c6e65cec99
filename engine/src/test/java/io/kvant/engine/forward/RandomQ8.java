package io.kvant.engine.forward;

import io.kvant.engine.tensor.DType;
import io.kvant.engine.tensor.Tensor;
import io.kvant.engine.tensor.Tensors;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Random;

/** Q8_0 (or Q4_0) tensors of random blocks for the forward package's tests. */
final class RandomQ8 {
  private RandomQ8() {}

  /** A Q8_0 tensor of random blocks (an f16 scale in [0, 1/64) and 32 int8 codes each). */
  static Tensor tensor(Arena arena, int rows, int cols, Random rnd) {
    return tensor(arena, DType.Q8_0, rows, cols, rnd);
  }

  /**
   * A tensor of a block type whose blocks are an f16 scale then code bytes (Q8_0, Q4_0): scales in
   * [0, 1/64), code bytes random.
   */
  static Tensor tensor(Arena arena, DType type, int rows, int cols, Random rnd) {
    MemorySegment data = arena.allocate(type.byteSize(rows, cols), 64);
    ValueLayout.OfShort le = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    for (long o = 0; o < data.byteSize(); o += type.blockBytes()) {
      data.set(le, o, Float.floatToFloat16(rnd.nextFloat() / 64));
      for (int j = 2; j < type.blockBytes(); j++) {
        data.set(ValueLayout.JAVA_BYTE, o + j, (byte) rnd.nextInt(256));
      }
    }
    return Tensors.of(type, rows, cols, data);
  }
}
