package io.kvant.engine.format.safetensors;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.fail;

import io.kvant.engine.format.ModelFormatException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import org.assertj.core.api.AbstractThrowableAssert;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsReaderTest {
  @TempDir Path dir;

  private AbstractThrowableAssert<?, ? extends Throwable> rejects(byte[] content) throws Exception {
    Path file = Files.write(dir.resolve("bad.safetensors"), content);
    return assertThatThrownBy(
            () -> {
              try (SafetensorsFile f = SafetensorsReader.open(file)) {
                // opening must fail
              }
            })
        .isInstanceOf(ModelFormatException.class)
        .hasMessageStartingWith("bad.safetensors: ");
  }

  private AbstractThrowableAssert<?, ? extends Throwable> rejectsHeader(String json, int data)
      throws Exception {
    return rejects(SafetensorsSamples.withHeader(json, data));
  }

  @Test
  void writerRoundTrip() throws Exception {
    Path file = dir.resolve("m.safetensors");
    SafetensorsSamples.writer().write(file);
    try (SafetensorsFile f = SafetensorsReader.open(file)) {
      assertThat(f.metadata())
          .containsExactly(Map.entry("format", "pt"), Map.entry("quantization", "none"));
      assertThat(f.tensorNames()).containsExactly("a.weight", "b", "c", "scalar");
      assertThat(f.dataOffset() % 8).isZero();
      SafetensorsTensor a = f.tensor("a.weight");
      assertThat(a.dtype()).isEqualTo(SafetensorsDtype.F32);
      assertThat(a.shape()).containsExactly(2, 3);
      assertThat(a.elementCount()).isEqualTo(6);
      assertThat(a.offset()).isEqualTo(f.dataOffset());
      assertThat(f.tensorData("a.weight").toArray(ValueLayout.JAVA_BYTE))
          .isEqualTo(SafetensorsSamples.bytes(24, 1));
      assertThat(f.tensorData("b").toArray(ValueLayout.JAVA_BYTE))
          .isEqualTo(SafetensorsSamples.bytes(8, 2));
      assertThat(f.tensorData("c").toArray(ValueLayout.JAVA_BYTE))
          .isEqualTo(SafetensorsSamples.bytes(5, 3));
      assertThat(f.tensor("scalar").shape()).isEmpty();
      assertThat(f.tensorData("scalar").byteSize()).isEqualTo(1);
      assertThat(f.tensorData("c").isReadOnly()).isTrue();
      assertThat(f.fileSize()).isEqualTo(f.dataOffset() + 24 + 8 + 5 + 1);
      assertThatThrownBy(() -> f.tensorData("zzz"))
          .isInstanceOf(ModelFormatException.class)
          .hasMessage("m.safetensors: no tensor named 'zzz'");
    }
  }

  @Test
  void writerCopiesMappedSegmentsAndRewritesFiles() throws Exception {
    Path first = dir.resolve("first.safetensors");
    SafetensorsSamples.writer().write(first);
    Path second = dir.resolve("second.safetensors");
    try (SafetensorsFile f = SafetensorsReader.open(first)) {
      new SafetensorsWriter()
          .add("copy", SafetensorsDtype.F32, new long[] {3, 2}, f.tensorData("a.weight"))
          .write(second);
    }
    new SafetensorsWriter()
        .add("x", SafetensorsDtype.I32, new long[] {1}, new byte[4])
        .write(second);
    try (SafetensorsFile f = SafetensorsReader.open(second)) {
      assertThat(f.tensorNames()).containsExactly("x");
      assertThat(f.metadata()).isEmpty();
    }
    assertThat(Files.list(dir).map(p -> p.getFileName().toString()))
        .containsExactlyInAnyOrder("first.safetensors", "second.safetensors");
  }

  @Test
  void streamedTensorsAreWrittenInPlaceAndMustWriteTheirExactSize() throws Exception {
    Path file = dir.resolve("streamed.safetensors");
    byte[] expect = SafetensorsSamples.bytes(24, 1);
    new SafetensorsWriter()
        .add("b", SafetensorsDtype.U8, new long[] {8}, SafetensorsSamples.bytes(8, 2))
        .add(
            "rows",
            SafetensorsDtype.F32,
            new long[] {2, 3},
            out -> {
              // two rows of 12 bytes, each its own buffer
              out.write(ByteBuffer.wrap(expect, 0, 12));
              out.write(ByteBuffer.wrap(expect, 12, 12));
            })
        .write(file);
    try (SafetensorsFile f = SafetensorsReader.open(file)) {
      assertThat(f.tensorNames()).containsExactly("b", "rows");
      assertThat(f.tensorData("rows").toArray(ValueLayout.JAVA_BYTE)).isEqualTo(expect);
      assertThat(f.tensorData("b").toArray(ValueLayout.JAVA_BYTE))
          .isEqualTo(SafetensorsSamples.bytes(8, 2));
    }
    for (int written : new int[] {20, 28}) {
      Path bad = dir.resolve("bad" + written + ".safetensors");
      SafetensorsWriter w =
          new SafetensorsWriter()
              .add(
                  "rows",
                  SafetensorsDtype.F32,
                  new long[] {2, 3},
                  out -> out.write(ByteBuffer.wrap(new byte[written])));
      assertThatThrownBy(() -> w.write(bad))
          .isInstanceOf(java.io.IOException.class)
          .hasMessageContaining("tensor 'rows' wrote");
      assertThat(bad).doesNotExist();
    }
    assertThat(Files.list(dir).map(p -> p.getFileName().toString()))
        .containsExactly("streamed.safetensors");
  }

  @Test
  void writerRejectsBadInput() {
    SafetensorsWriter w = new SafetensorsWriter();
    assertThatThrownBy(() -> w.add("t", SafetensorsDtype.F16, new long[] {3}, new byte[5]))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("needs 6 bytes, got 5");
    assertThatThrownBy(
            () -> w.add("__metadata__", SafetensorsDtype.U8, new long[] {0}, new byte[0]))
        .isInstanceOf(IllegalArgumentException.class);
    w.add("t", SafetensorsDtype.U8, new long[] {1}, new byte[1]);
    assertThatThrownBy(() -> w.add("t", SafetensorsDtype.U8, new long[] {1}, new byte[1]))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("duplicate");
    assertThatThrownBy(() -> w.add("n", SafetensorsDtype.U8, new long[] {-1}, new byte[0]))
        .isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void readsHandWrittenHeaderWithPaddingAndGaps() throws Exception {
    String json =
        "{\"w\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[0,8]},"
            + "\"e\":{\"dtype\":\"F8_E4M3\",\"shape\":[0],\"data_offsets\":[8,8]},"
            + "\"v\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[12,16]}}     ";
    Path file = Files.write(dir.resolve("h.safetensors"), SafetensorsSamples.withHeader(json, 16));
    try (SafetensorsFile f = SafetensorsReader.open(file)) {
      assertThat(f.metadata()).isEmpty();
      MemorySegment v = f.tensorData("v");
      assertThat(v.toArray(ValueLayout.JAVA_BYTE)).containsExactly(12, 13, 14, 15);
      assertThat(f.tensorData("e").byteSize()).isZero();
      assertThat(f.tensor("w").dtype()).isEqualTo(SafetensorsDtype.F16);
    }
  }

  @Test
  void malformedHeaders() throws Exception {
    rejects(new byte[3]).hasMessageContaining("too small");
    ByteBuffer huge = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(1L << 40);
    rejects(huge.array()).hasMessageContaining("header length 1099511627776 exceeds the limit");
    ByteBuffer neg = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(-1);
    rejects(neg.array()).hasMessageContaining("18446744073709551615");
    ByteBuffer past = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(100);
    rejects(past.array()).hasMessageContaining("header length 100 extends past end of file");
    rejectsHeader("{\"a\":", 0).hasMessageContaining("header is not valid JSON");
    rejectsHeader("[1,2]", 0).hasMessage("bad.safetensors: header is not a JSON object");
    rejectsHeader("", 0).hasMessageContaining("not");
    rejectsHeader("{} {}", 0).hasMessageContaining("not valid JSON");
    rejectsHeader(
            "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                + "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
            2)
        .hasMessageContaining("Duplicate field 'a'");
    rejectsHeader("{\"__metadata__\":{\"k\":1}}", 0)
        .hasMessageContaining("__metadata__ value of 'k' is not a string");
  }

  @Test
  void malformedEntries() throws Exception {
    rejectsHeader("{\"a\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1)
        .hasMessage("bad.safetensors: tensor 'a' has unsupported dtype 'Q4'");
    rejectsHeader("{\"a\":{\"shape\":[1],\"data_offsets\":[0,1]}}", 1)
        .hasMessageContaining("no string 'dtype'");
    rejectsHeader("{\"a\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,1]}}", 1)
        .hasMessageContaining("'shape' element 0 (-1) is not a non-negative 64-bit integer");
    rejectsHeader("{\"a\":{\"dtype\":\"U8\",\"shape\":[1.5],\"data_offsets\":[0,1]}}", 1)
        .hasMessageContaining("not a non-negative");
    rejectsHeader(
            "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,99999999999999999999]}}", 1)
        .hasMessageContaining("not a non-negative 64-bit integer");
    rejectsHeader("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0]}}", 1)
        .hasMessageContaining("has 1 elements, expected 2");
    rejectsHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 8)
        .hasMessage(
            "bad.safetensors: tensor 'a' data_offsets [0, 4] span 4 bytes but F32[2] needs 8");
    rejectsHeader("{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]}}", 7)
        .hasMessage(
            "bad.safetensors: tensor 'a' data_offsets [0, 8] are not within the data area (7"
                + " bytes)");
    rejectsHeader("{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[5,4]}}", 7)
        .hasMessageContaining("not within the data area");
    rejectsHeader(
            "{\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],"
                + "\"data_offsets\":[0,0]}}",
            0)
        .hasMessageContaining("overflows the byte size");
    rejectsHeader("{\"a\":5}", 0).hasMessageContaining("entry is not a JSON object");
  }

  @Test
  void overlappingTensorsAreRejected() throws Exception {
    rejectsHeader(
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
            12)
        .hasMessage("bad.safetensors: tensor 'b' data [4, 12) overlaps tensor 'a' [0, 8)");
    // An empty tensor at a neighbour's start does not overlap, whatever the header order.
    Path ok =
        Files.write(
            dir.resolve("ok.safetensors"),
            SafetensorsSamples.withHeader(
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    + "\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}",
                8));
    try (SafetensorsFile f = SafetensorsReader.open(ok)) {
      assertThat(f.tensors()).hasSize(2);
    }
  }

  @Test
  void everyTruncationIsAModelFormatException() throws Exception {
    Path valid = dir.resolve("valid.safetensors");
    SafetensorsSamples.writer().write(valid);
    byte[] full = Files.readAllBytes(valid);
    Path file = dir.resolve("cut.safetensors");
    for (int length = 0; length < full.length; length++) {
      Files.write(file, Arrays.copyOf(full, length));
      try (SafetensorsFile f = SafetensorsReader.open(file)) {
        fail("truncated to %d of %d bytes but opened: %s", length, full.length, f.tensors());
      } catch (ModelFormatException e) {
        assertThat(e.getMessage()).startsWith("cut.safetensors: ");
      }
    }
  }

  @Test
  void dataSurvivesOnlyWhileOpen() throws Exception {
    Path file = dir.resolve("m.safetensors");
    SafetensorsSamples.writer().write(file);
    SafetensorsFile f = SafetensorsReader.open(file);
    MemorySegment a = f.tensorData("a.weight");
    f.close();
    f.close();
    assertThatThrownBy(() -> a.get(ValueLayout.JAVA_BYTE, 0))
        .isInstanceOf(IllegalStateException.class);
    // Sanity: a segment from another arena is unaffected.
    try (Arena arena = Arena.ofConfined()) {
      assertThat(arena.allocate(1).byteSize()).isEqualTo(1);
    }
  }
}
