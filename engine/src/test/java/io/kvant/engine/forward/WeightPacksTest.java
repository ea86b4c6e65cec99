package io.kvant.engine.forward;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.engine.tensor.ComputePool;
import io.kvant.engine.tensor.DType;
import io.kvant.engine.tensor.Tensor;
import io.kvant.engine.tensor.Tensors;
import io.kvant.engine.tensor.packed.PackedMatrix;
import java.lang.foreign.Arena;
import java.util.Random;
import org.junit.jupiter.api.Test;

class WeightPacksTest {
  @Test
  void aTensorIsPackedOnceAndATypeWithoutAnIntegerKernelIsRemembered() {
    try (Arena arena = Arena.ofConfined();
        ComputePool pool = new ComputePool(1)) {
      Tensor q8 = RandomQ8.tensor(arena, 64, 96, new Random(3));
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
}
