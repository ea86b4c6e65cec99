package io.kvant.engine.tensor;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class TensorDecodeTest {

  @Test
  void f16DecodesEveryBitPatternLikeFloat16ToFloat() {
    int n = 1 << 16;
    ByteBuffer buf = ByteBuffer.allocate(2 * n).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < n; i++) {
      buf.putShort((short) i);
    }
    Tensor w = Tensors.of(DType.F16, 1, n, MemorySegment.ofArray(buf.array()));
    float[] dst = new float[n];
    // Many passes, so that the decode loop also runs compiled by C2 (auto-vectorised), not only
    // interpreted: the two must agree.
    for (int pass = 0; pass < 40; pass++) {
      java.util.Arrays.fill(dst, 42f);
      w.dequantizeRow(0, dst, 0);
      for (int i = 0; i < n; i++) {
        float expected = Float.float16ToFloat((short) i);
        if (Float.isNaN(expected)) {
          assertThat(dst[i]).as("pass %d bits %x", pass, i).isNaN(); // may come back quieted
        } else if (Float.floatToRawIntBits(dst[i]) != Float.floatToRawIntBits(expected)) {
          assertThat(Float.floatToRawIntBits(dst[i]))
              .as("pass %d bits %x", pass, i)
              .isEqualTo(Float.floatToRawIntBits(expected));
        }
      }
    }
  }

  @Test
  void bf16IsTopHalfOfFloat() {
    float[] values = {1f, -2.5f, 0f, -0f, Float.POSITIVE_INFINITY, 3.0e38f, 1e-40f};
    ByteBuffer buf = ByteBuffer.allocate(2 * values.length).order(ByteOrder.LITTLE_ENDIAN);
    for (float v : values) {
      buf.putShort((short) (Float.floatToRawIntBits(v) >>> 16));
    }
    Tensor w = Tensors.of(DType.BF16, 1, values.length, MemorySegment.ofArray(buf.array()));
    for (int c = 0; c < values.length; c++) {
      int expected = Float.floatToRawIntBits(values[c]) & 0xFFFF0000;
      assertThat(Float.floatToRawIntBits(w.get(0, c))).isEqualTo(expected);
    }
  }

  @Test
  void q8_0BlockLayout() {
    // two rows of one block each: d = 0.5 and d = -2
    ByteBuffer buf = ByteBuffer.allocate(68).order(ByteOrder.LITTLE_ENDIAN);
    buf.putShort(Float.floatToFloat16(0.5f));
    for (int j = 0; j < 32; j++) {
      buf.put((byte) (j - 16));
    }
    buf.putShort(Float.floatToFloat16(-2f));
    for (int j = 0; j < 32; j++) {
      buf.put((byte) (j == 0 ? -128 : 127));
    }
    Tensor w = Tensors.of(DType.Q8_0, 2, 32, MemorySegment.ofArray(buf.array()));
    float[] row0 = new float[32];
    float[] row1 = new float[32];
    w.dequantizeRow(0, row0, 0);
    w.dequantizeRow(1, row1, 0);
    for (int j = 0; j < 32; j++) {
      assertThat(row0[j]).isEqualTo(0.5f * (j - 16));
      assertThat(row1[j]).isEqualTo(j == 0 ? 256f : -254f);
    }
    assertThat(w.get(1, 31)).isEqualTo(-254f);
  }

  @Test
  void q4_0NibbleOrder() {
    // byte j = low nibble j & 0xF, high nibble 15 - j: element j = j - 8, element 16+j = 7 - j
    ByteBuffer buf = ByteBuffer.allocate(36).order(ByteOrder.LITTLE_ENDIAN);
    for (float d : new float[] {1f, -0.25f}) {
      buf.putShort(Float.floatToFloat16(d));
      for (int j = 0; j < 16; j++) {
        buf.put((byte) ((15 - j) << 4 | j));
      }
    }
    Tensor w = Tensors.of(DType.Q4_0, 1, 64, MemorySegment.ofArray(buf.array()));
    float[] row = new float[64];
    w.dequantizeRow(0, row, 0);
    for (int j = 0; j < 16; j++) {
      assertThat(row[j]).isEqualTo(j - 8f);
      assertThat(row[16 + j]).isEqualTo(7f - j);
      assertThat(row[32 + j]).isEqualTo(-0.25f * (j - 8));
      assertThat(row[48 + j]).isEqualTo(-0.25f * (7 - j));
      assertThat(w.get(0, 16 + j)).isEqualTo(7f - j);
    }
  }

  @Test
  void worksOverOffHeapReadOnlySegments() {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment seg = arena.allocate(3 * 5 * 4 + 1);
      MemorySegment data = seg.asSlice(1, 3 * 5 * 4);
      for (int i = 0; i < 15; i++) {
        data.set(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 4L * i, i);
      }
      Tensor w = Tensors.of(DType.F32, 3, 5, data.asReadOnly());
      float[] out = new float[3];
      w.matmul(new float[] {1, 0, 0, 0, 1}, 1, out);
      assertThat(out).containsExactly(4f, 14f, 24f);
    }
  }

  /**
   * The types built by {@code Tensors.of}; the quantized ones have typed factories of their own.
   */
  @ParameterizedTest
  @EnumSource(
      value = DType.class,
      names = {"F32", "F16", "BF16", "Q8_0", "Q4_0"})
  void factoryValidatesSizes(DType type) {
    int cols = 64;
    int size = (int) type.byteSize(3, cols);
    assertThat(Tensors.of(type, 3, cols, MemorySegment.ofArray(new byte[size])).dtype())
        .isEqualTo(type);
    assertThat(Tensors.of(type, 3, cols, MemorySegment.ofArray(new byte[size])).byteSize())
        .isEqualTo(size);
    for (int wrong : new int[] {size - 1, size + 1, 0}) {
      assertThatThrownBy(() -> Tensors.of(type, 3, cols, MemorySegment.ofArray(new byte[wrong])))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("bytes");
    }
    assertThatThrownBy(() -> Tensors.of(type, 0, cols, MemorySegment.ofArray(new byte[0])))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> Tensors.of(type, 3, -1, MemorySegment.ofArray(new byte[0])))
        .isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void blockTypesRejectColsNotMultipleOf32() {
    for (DType type : new DType[] {DType.Q8_0, DType.Q4_0}) {
      // 48 columns: 1.5 blocks; give the byte count that 2 blocks per row would take
      assertThatThrownBy(
              () -> Tensors.of(type, 2, 48, MemorySegment.ofArray(new byte[4 * type.blockBytes()])))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("multiple of 32");
    }
  }

  @Test
  void byteSizes() {
    assertThat(DType.F32.byteSize(2, 3)).isEqualTo(24);
    assertThat(DType.F16.byteSize(2, 3)).isEqualTo(12);
    assertThat(DType.BF16.byteSize(2, 3)).isEqualTo(12);
    assertThat(DType.Q8_0.byteSize(2, 64)).isEqualTo(4 * 34);
    assertThat(DType.Q4_0.byteSize(2, 64)).isEqualTo(4 * 18);
  }
}
