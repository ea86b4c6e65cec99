package io.kvant.perf.jmh;

import io.kvant.engine.tensor.DType;
import io.kvant.engine.tensor.Tensor;
import io.kvant.engine.tensor.Tensors;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Random;

/** Random weights of a GGUF block type (Q8_0, Q4_0) for the kernel benchmarks. */
final class RandomBlockWeights {
  private RandomBlockWeights() {}

  /**
   * A {@code rows x cols} tensor of {@code type} in memory of {@code arena}: each block an F16
   * scale in [-1/128, 1/128) and random code bytes, drawn from {@code rnd}.
   */
  static Tensor of(DType type, int rows, int cols, Arena arena, Random rnd) {
    MemorySegment data = arena.allocate(type.byteSize(rows, cols), 64);
    int blockBytes = type.blockBytes();
    ValueLayout.OfShort le = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    for (long o = 0; o < data.byteSize(); o += blockBytes) {
      data.set(le, o, Float.floatToFloat16((rnd.nextFloat() - 0.5f) / 64));
      for (int j = 2; j < blockBytes; j++) {
        data.set(ValueLayout.JAVA_BYTE, o + j, (byte) rnd.nextInt(256));
      }
    }
    return Tensors.of(type, rows, cols, data.asReadOnly());
  }
}
