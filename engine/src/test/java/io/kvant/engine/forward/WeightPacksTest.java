package io.kvant.engine.forward;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.engine.tensor.ComputePool;
import io.kvant.engine.tensor.DType;
import io.kvant.engine.tensor.Tensor;
import io.kvant.engine.tensor.Tensors;
import io.kvant.engine.tensor.packed.PackedMatrix;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.api.Test;

class WeightPacksTest {
  @Test
  void aTensorIsPackedOnceAndATypeWithoutAnIntegerKernelIsRemembered() {
    try (Arena arena = Arena.ofConfined();
        ComputePool pool = new ComputePool(1)) {
      Tensor q8 = q8(arena, 64, 96, new Random(3));
      Tensor f32 = Tensors.of(DType.F32, 4, 32, arena.allocate(4L * 4 * 32, 64));
      WeightPacks packs = new WeightPacks();

      PackedMatrix first = packs.get(q8, pool);
      assertThat(first).isNotNull();
      assertThat(first.rows()).isEqualTo(64);
      assertThat(first.cols()).isEqualTo(96);
      assertThat(packs.get(q8, pool)).isSameAs(first);
      assertThat(packs.get(f32, pool)).isNull();
      assertThat(packs.get(f32, pool)).isNull();
      assertThat(packs.size()).isEqualTo(2);
    }
  }

  @Test
  void theCpuBackendRunsTheIntegerKernelsUnlessToldOtherwise() {
    try (ComputePool pool = new ComputePool(1)) {
      assertThat(new CpuBackend(pool).describe()).isEqualTo("cpu (1 threads, integer kernels)");
      assertThat(new CpuBackend(pool, MatmulKernels.FLOAT).describe())
          .isEqualTo("cpu (1 threads, float kernels)");
    }
  }

  /** A Q8_0 tensor of random blocks: an f16 scale and 32 int8 codes each. */
  private static Tensor q8(Arena arena, int rows, int cols, Random rnd) {
    DType type = DType.Q8_0;
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
