package io.kvant.engine.format.gguf;

import static io.kvant.engine.format.gguf.GgufValueType.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kvant.engine.format.ModelFormatException;
import io.kvant.engine.testing.GgufTestWriter;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GgufReaderTest {
  @TempDir Path dir;

  private GgufFile open(GgufTestWriter w) throws Exception {
    return GgufReader.open(w.write(dir.resolve("t.gguf")));
  }

  @Test
  void readsEveryScalarMetadataType() throws Exception {
    try (GgufFile f = open(GgufSamples.everything())) {
      assertThat(f.version()).isEqualTo(3);
      assertThat(f.alignment()).isEqualTo(32);
      assertThat(f.getString("general.architecture")).isEqualTo("llama");
      assertThat(f.getInt("t.u8")).isEqualTo(200);
      assertThat(f.getInt("t.i8")).isEqualTo(-100);
      assertThat(f.getInt("t.u16")).isEqualTo(60000);
      assertThat(f.getInt("t.i16")).isEqualTo(-30000);
      assertThat(f.getLong("t.u32")).isEqualTo(0xFFFFFFFFL);
      assertThat(f.getInt("t.i32")).isEqualTo(-2_000_000_000);
      assertThat(f.getLong("t.u64")).isEqualTo(1L << 40);
      assertThat(f.getLong("t.i64")).isEqualTo(-(1L << 50));
      assertThat(f.getFloat("t.f32")).isEqualTo(1e-5f);
      assertThat(f.metadata().getDouble("t.f64")).isEqualTo(Math.PI);
      assertThat(f.getFloat("t.f64")).isEqualTo((float) Math.PI);
      assertThat(f.getBoolean("t.bool")).isTrue();
      assertThat(f.getString("t.string")).isEqualTo("héllo ▁world");
      assertThat(f.metadata().type("t.u16")).contains(UINT16);
      assertThat(f.keys()).hasSize(23).first().isEqualTo("general.architecture");
    }
  }

  @Test
  void readsArraysIncludingNested() throws Exception {
    try (GgufFile f = open(GgufSamples.everything())) {
      assertThat(f.getStringArray("t.strings")).containsExactly("<unk>", "", "▁the");
      assertThat(f.getFloatArray("t.floats")).containsExactly(0f, -1.5f, 3.25f);
      assertThat(f.getFloatArray("t.f64s")).containsExactly(0.5f, 2f);
      assertThat(f.getIntArray("t.u8s")).containsExactly(0, 255, 7);
      assertThat(f.getIntArray("t.i16s")).containsExactly(-1, 2);
      assertThat(f.getIntArray("t.u32s")).containsExactly(1, 0x7FFFFFFF);
      assertThat(f.getIntArray("t.i64s")).containsExactly(-5, 6);
      assertThat(f.getIntArray("t.empty")).isEmpty();
      assertThat(f.metadata().arrayElementType("t.nested")).contains(ARRAY);
      assertThat(f.metadata().getArrayLength("t.nested")).isEqualTo(2);
      assertThat(f.metadata().value("t.nested")).contains(List.of(List.of(1L, 2L), List.of("x")));
      assertThat(f.metadata().value("t.bools")).contains(List.of(true, false));
      assertThat(f.metadata().value("t.u32")).contains(0xFFFFFFFFL);
    }
  }

  @Test
  void typedGettersReportMissingKeysAndWrongTypes() throws Exception {
    try (GgufFile f = open(GgufSamples.everything())) {
      assertThatThrownBy(() -> f.getString("nope"))
          .isInstanceOf(ModelFormatException.class)
          .hasMessage("t.gguf: metadata key 'nope' is missing");
      assertThatThrownBy(() -> f.getInt("t.string"))
          .isInstanceOf(ModelFormatException.class)
          .hasMessage("t.gguf: metadata key 't.string' is string, expected an integer");
      assertThatThrownBy(() -> f.getInt("t.u32"))
          .isInstanceOf(ModelFormatException.class)
          .hasMessageContaining("'t.u32'")
          .hasMessageContaining("4294967295 does not fit in a 32-bit int");
      assertThatThrownBy(() -> f.getStringArray("t.floats"))
          .isInstanceOf(ModelFormatException.class)
          .hasMessageContaining("array of float32, expected array of string");
      assertThatThrownBy(() -> f.getIntArray("t.floats")).isInstanceOf(ModelFormatException.class);
      assertThatThrownBy(() -> f.getFloat("t.i32")).isInstanceOf(ModelFormatException.class);
      assertThatThrownBy(() -> f.getBoolean("t.u8")).isInstanceOf(ModelFormatException.class);
      assertThatThrownBy(() -> f.getFloatArray("t.string"))
          .isInstanceOf(ModelFormatException.class);
      // Defaults apply only to absent keys.
      assertThat(f.getInt("absent", 7)).isEqualTo(7);
      assertThat(f.getLong("absent", 8L)).isEqualTo(8L);
      assertThat(f.getFloat("absent", 0.5f)).isEqualTo(0.5f);
      assertThat(f.getBoolean("absent", true)).isTrue();
      assertThat(f.findString("absent")).isEmpty();
      assertThat(f.findString("general.architecture")).contains("llama");
      assertThat(f.getInt("t.u8", 7)).isEqualTo(200);
      assertThatThrownBy(() -> f.getInt("t.string", 7)).isInstanceOf(ModelFormatException.class);
    }
  }

  @Test
  void uint64AboveLongRangeIsRejectedByGetLong() throws Exception {
    try (GgufFile f = open(new GgufTestWriter().kv("big", UINT64, -1L))) {
      assertThat(f.metadata().value("big")).contains(-1L);
      assertThatThrownBy(() -> f.getLong("big"))
          .isInstanceOf(ModelFormatException.class)
          .hasMessageContaining("18446744073709551615");
    }
  }

  @Test
  void tensorInfosAndZeroCopyData() throws Exception {
    GgufTestWriter w = GgufSamples.everything();
    long[] rel = w.relativeOffsets();
    try (GgufFile f = open(w)) {
      assertThat(f.tensorCount()).isEqualTo(4);
      assertThat(f.tensors())
          .extracting(GgufTensorInfo::name)
          .containsExactly("f32", "f16", "q8", "q4");
      assertThat(f.dataOffset() % 32).isZero();

      GgufTensorInfo f32 = f.tensor("f32");
      assertThat(f32.type()).contains(GgmlType.F32);
      assertThat(f32.dims()).containsExactly(3, 2);
      assertThat(f32.elementCount()).isEqualTo(6);
      assertThat(f32.byteSize()).isEqualTo(24);
      assertThat(f32.offset()).isEqualTo(f.dataOffset() + rel[0]);
      MemorySegment data = f.tensorData("f32");
      assertThat(data.byteSize()).isEqualTo(24);
      assertThat(data.isReadOnly()).isTrue();
      var le = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
      assertThat(data.getAtIndex(le, 5)).isEqualTo(5.5f);

      var h = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
      MemorySegment f16 = f.tensorData("f16");
      assertThat(Float.float16ToFloat(f16.getAtIndex(h, 3))).isEqualTo(65504f);
      assertThat(f.tensor("f16").byteSize()).isEqualTo(8);

      assertThat(f.tensor("q8").byteSize()).isEqualTo(4 * 34);
      assertThat(f.tensorData("q8").toArray(ValueLayout.JAVA_BYTE))
          .isEqualTo(GgufSamples.bytes(4 * 34, 1));
      assertThat(f.tensor("q4").dims()).containsExactly(32, 1, 3);
      assertThat(f.tensorData("q4").toArray(ValueLayout.JAVA_BYTE))
          .isEqualTo(GgufSamples.bytes(3 * 18, 2));
      // Zero-copy: the slice is a view of the file mapping at the tensor's offset.
      assertThat(f.tensorData("q4").address() - f.segment().address())
          .isEqualTo(f.tensor("q4").offset());

      assertThat(f.findTensor("nope")).isEmpty();
      assertThatThrownBy(() -> f.tensorData("nope"))
          .isInstanceOf(ModelFormatException.class)
          .hasMessage("t.gguf: no tensor named 'nope'");
    }
  }

  @Test
  void versionTwoAndCustomAlignment() throws Exception {
    GgufTestWriter w =
        new GgufTestWriter()
            .version(2)
            .alignment(64)
            .tensor("a", 0, new long[] {3}, GgufSamples.bytes(12, 3))
            .tensor("b", 0, new long[] {5}, GgufSamples.bytes(20, 4));
    try (GgufFile f = open(w)) {
      assertThat(f.version()).isEqualTo(2);
      assertThat(f.alignment()).isEqualTo(64);
      assertThat(f.dataOffset() % 64).isZero();
      assertThat(f.tensor("b").offset()).isEqualTo(f.dataOffset() + 64);
      assertThat(f.tensorData("b").toArray(ValueLayout.JAVA_BYTE))
          .isEqualTo(GgufSamples.bytes(20, 4));
    }
  }

  @Test
  void unknownTensorTypeOpensButHasNoSizeOrData() throws Exception {
    GgufTestWriter w =
        new GgufTestWriter()
            .tensor("odd", 4, new long[] {32}, new byte[20])
            .tensor("ok", 0, new long[] {2}, new byte[8]);
    try (GgufFile f = open(w)) {
      GgufTensorInfo odd = f.tensor("odd");
      assertThat(odd.typeId()).isEqualTo(4);
      assertThat(odd.type()).isEmpty();
      assertThat(odd.elementCount()).isEqualTo(32);
      assertThatThrownBy(odd::byteSize)
          .isInstanceOf(ModelFormatException.class)
          .hasMessage("t.gguf: tensor 'odd' has unknown ggml type id 4; its size is unknown");
      assertThatThrownBy(() -> f.tensorData("odd")).isInstanceOf(ModelFormatException.class);
      assertThat(f.tensorData("ok").byteSize()).isEqualTo(8);
    }
  }

  @Test
  void closeUnmapsAndIsIdempotent() throws Exception {
    GgufFile f = open(GgufSamples.everything());
    MemorySegment data = f.tensorData("f32");
    f.close();
    f.close();
    assertThatThrownBy(() -> data.get(ValueLayout.JAVA_BYTE, 0))
        .isInstanceOf(IllegalStateException.class);
  }

  @Test
  void ggmlTypeTable() {
    assertThat(GgmlType.fromId(30)).contains(GgmlType.BF16);
    assertThat(GgmlType.fromId(8)).contains(GgmlType.Q8_0);
    assertThat(GgmlType.fromId(14)).contains(GgmlType.Q6_K);
    assertThat(GgmlType.fromId(4)).isEmpty();
    assertThat(GgmlType.fromId(-1)).isEmpty();
    assertThat(GgmlType.fromId(1000)).isEmpty();
    assertThat(GgmlType.Q4_K.byteSize(512)).isEqualTo(288);
    assertThat(GgmlType.Q6_K.byteSize(256)).isEqualTo(210);
    assertThat(GgmlType.BF16.byteSize(3)).isEqualTo(6);
    for (GgmlType t : GgmlType.values()) {
      assertThat(GgmlType.fromId(t.id())).contains(t);
    }
  }
}
