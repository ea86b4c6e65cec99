package io.kvant.cuda.device;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

/** The argument rules of {@link Gemm#multiplyCodes} (runs without a GPU). */
class GemmCodesTest {
  @Test
  void codeProductsTakeInt8OrE4m3CodesInWholeSixteenByteRuns() {
    assertThat(Gemm.codeKey(CudaKernels.QF_INT8, 14336, 4096, 64, 14336)).isNotNull();
    assertThat(Gemm.codeKey(CudaKernels.QF_E4M3, 9, 32, 1, 12)).isNotNull();
    assertThatThrownBy(() -> Gemm.codeKey(CudaKernels.QF_E5M2, 64, 256, 16, 64))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("format 2");
    assertThatThrownBy(() -> Gemm.codeKey(CudaKernels.QF_INT8, 64, 172, 16, 64))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("multiple of 16, got 172");
    assertThatThrownBy(() -> Gemm.codeKey(CudaKernels.QF_INT8, 9, 32, 16, 9))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("ldAcc 9");
    assertThatThrownBy(() -> Gemm.codeKey(CudaKernels.QF_INT8, 64, 32, 0, 64))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("n 0");
  }
}
