package io.kvant.cuda.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kvant.cuda.device.CudaKernels;
import org.junit.jupiter.api.Test;

/**
 * Which products take W8A8 and the scratch arithmetic around it (runs without a GPU: the tensors
 * here have no device buffer, only the layout the rule reads).
 */
class W8a8DispatchTest {
  private static DeviceTensor codes(int bits, int format, int rows, int cols, int groupSize) {
    int groups = (cols + groupSize - 1) / groupSize;
    long ldw = QuantizedLayout.align16(bits == 8 ? cols : (cols + 1) / 2);
    return new DeviceTensor(
        null,
        CudaKernels.DT_F32,
        rows,
        cols,
        new DeviceTensor.DeviceQuant(bits, format, ldw, groupSize, groups, null, null, false));
  }

  @Test
  void int8PerChannelAndE4m3TakeW8a8FromTheThresholdOn() {
    DeviceTensor i8 = codes(8, CudaKernels.QF_INT8, 64, 172, 172);
    DeviceTensor e4m3 = codes(8, CudaKernels.QF_E4M3, 64, 4096, 4096);
    for (DeviceTensor w : new DeviceTensor[] {i8, e4m3}) {
      assertThat(W8a8Products.reads(w)).isTrue();
      assertThat(QuantizedProducts.takesW8a8(w, 15, 16)).isFalse();
      assertThat(QuantizedProducts.takesW8a8(w, 16, 16)).isTrue();
      assertThat(QuantizedProducts.takesW8a8(w, 300, 16)).isTrue();
      assertThat(QuantizedProducts.takesW8a8(w, 1, 1)).isTrue();
      assertThat(QuantizedProducts.takesW8a8(w, 1 << 20, QuantizedProducts.W8A8_OFF)).isFalse();
    }
  }

  @Test
  void otherLayoutsNeverTakeW8a8() {
    DeviceTensor[] others = {
      codes(8, CudaKernels.QF_E5M2, 64, 256, 256), // E5M2 keeps the tiles
      codes(8, CudaKernels.QF_INT8, 64, 256, 32), // Q8_0: a scale per 32 columns
      new DeviceTensor( // tiled INT8 per-channel (mq8's layout)
          null,
          CudaKernels.DT_F32,
          64,
          256,
          new DeviceTensor.DeviceQuant(8, CudaKernels.QF_INT8, 256, 256, 1, null, null, true)),
      codes(4, 0, 64, 256, 128), // INT4 group-wise
      codes(4, 0, 64, 256, 32), // Q4_0
      new DeviceTensor(null, CudaKernels.DT_BF16, 64, 256) // dense
    };
    for (DeviceTensor w : others) {
      assertThat(W8a8Products.reads(w)).as("%s", w).isFalse();
      assertThat(QuantizedProducts.takesW8a8(w, 256, 1)).as("%s", w).isFalse();
    }
  }

  @Test
  void theThresholdIsCheckedAndOffByDefault() {
    QuantizedProducts p = new QuantizedProducts(null, null);
    assertThat(p.w8a8MinRows()).isEqualTo(QuantizedProducts.W8A8_OFF);
    assertThatThrownBy(() -> p.setW8a8MinRows(0))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("w8a8MinRows");
    p.setW8a8MinRows(16);
    assertThat(p.w8a8MinRows()).isEqualTo(16);
  }

  @Test
  void codesAreReusedOnlyForTheSameInputWhenAsked() {
    W8a8Products.Codes c = new W8a8Products.Codes(1024, 16, 4096, 4096, CudaKernels.QF_E4M3, 8192);
    assertThat(W8a8Products.reuses(c, c, true)).isTrue();
    assertThat(W8a8Products.reuses(c, c, false)).isFalse();
    assertThat(W8a8Products.reuses(null, c, true)).isFalse();
    W8a8Products.Codes[] others = {
      new W8a8Products.Codes(2048, 16, 4096, 4096, CudaKernels.QF_E4M3, 8192), // input
      new W8a8Products.Codes(1024, 17, 4096, 4096, CudaKernels.QF_E4M3, 8192), // rows
      new W8a8Products.Codes(1024, 16, 4080, 4096, CudaKernels.QF_E4M3, 8192), // width
      new W8a8Products.Codes(1024, 16, 4096, 4112, CudaKernels.QF_E4M3, 8192), // stride
      new W8a8Products.Codes(1024, 16, 4096, 4096, CudaKernels.QF_INT8, 8192), // format
      new W8a8Products.Codes(1024, 16, 4096, 4096, CudaKernels.QF_E4M3, 0) // scratch
    };
    for (W8a8Products.Codes o : others) {
      assertThat(W8a8Products.reuses(c, o, true)).as("%s", o).isFalse();
    }
  }

  @Test
  void scratchArithmetic() {
    assertThat(W8a8Products.ldAcc(1)).isEqualTo(4);
    assertThat(W8a8Products.ldAcc(4096)).isEqualTo(4096);
    assertThat(W8a8Products.ldAcc(4097)).isEqualTo(4100);
    // scales rounded up to 16 bytes, then the codes
    assertThat(W8a8Products.codeBytes(1, 176)).isEqualTo(16 + 176);
    assertThat(W8a8Products.codeBytes(5, 32)).isEqualTo(32 + 160);
    // a 32 MiB accumulator holds 585 rows of 14336 outputs, 65 rows of the 128256-wide head
    assertThat(W8a8Products.rowsPerPass(32L << 20, 14336, 4096)).isEqualTo(585);
    assertThat(W8a8Products.rowsPerPass(32L << 20, 128256, 4096)).isEqualTo(65);
    assertThat(W8a8Products.rowsPerPass(32L << 20, 14336, 16)).isEqualTo(16);
    assertThat(W8a8Products.rowsPerPass(8, 9, 16)).isZero();
  }

  @Test
  void productArgumentsAreChecked() {
    W8a8Products p = new W8a8Products(null, null);
    assertThatThrownBy(
            () ->
                p.multiply(
                    CudaKernels.QF_E5M2,
                    0,
                    256,
                    0,
                    64,
                    256,
                    0,
                    16,
                    0,
                    1 << 20,
                    0,
                    1 << 20,
                    0,
                    false,
                    false))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("format 2");
    assertThatThrownBy(
            () ->
                p.multiply(
                    CudaKernels.QF_INT8,
                    0,
                    100,
                    0,
                    64,
                    100,
                    0,
                    16,
                    0,
                    1 << 20,
                    0,
                    1 << 20,
                    0,
                    false,
                    false))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("ldw 100");
    assertThatThrownBy(
            () ->
                p.multiply(
                    CudaKernels.QF_INT8,
                    0,
                    256,
                    0,
                    64,
                    256,
                    0,
                    0,
                    0,
                    1 << 20,
                    0,
                    1 << 20,
                    0,
                    false,
                    false))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("n 0");
    // scratch too small: nothing runs (no kernels or cuBLASLt needed to say so), the caller falls
    // back
    assertThat(
            p.multiply(
                CudaKernels.QF_INT8,
                0,
                256,
                0,
                64,
                256,
                0,
                16,
                0,
                100,
                0,
                1 << 20,
                0,
                false,
                false))
        .isFalse();
    // an accumulating product needs the scratch accumulator; one that does not runs in y
    assertThat(
            p.multiply(
                CudaKernels.QF_INT8, 0, 256, 0, 64, 256, 0, 16, 0, 1 << 20, 0, 100, 0, true, false))
        .isFalse();
    assertThat(W8a8Products.inPlace(false, 64, 4096)).isTrue();
    assertThat(W8a8Products.inPlace(true, 64, 4096)).isFalse();
    assertThat(W8a8Products.inPlace(false, 62, 4096)).isFalse();
    assertThat(W8a8Products.inPlace(false, 64, 4100)).isFalse();
  }
}
