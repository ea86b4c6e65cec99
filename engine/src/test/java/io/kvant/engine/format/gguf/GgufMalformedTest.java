package io.kvant.engine.format.gguf;

import static io.kvant.engine.format.gguf.GgufValueType.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.fail;

import io.kvant.engine.format.ModelFormatException;
import io.kvant.engine.testing.GgufTestWriter;
import io.kvant.engine.testing.GgufTestWriter.Array;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.assertj.core.api.AbstractThrowableAssert;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GgufMalformedTest {
  @TempDir Path dir;

  private AbstractThrowableAssert<?, ? extends Throwable> rejects(byte[] content) throws Exception {
    Path file = dir.resolve("bad.gguf");
    Files.write(file, content);
    return assertThatThrownBy(
            () -> {
              try (GgufFile f = GgufReader.open(file)) {
                // no-op: opening must fail
              }
            })
        .isInstanceOf(ModelFormatException.class)
        .hasMessageStartingWith("bad.gguf: ");
  }

  private AbstractThrowableAssert<?, ? extends Throwable> rejects(GgufTestWriter w)
      throws Exception {
    return rejects(w.toBytes());
  }

  @Test
  void everyTruncationIsAModelFormatException() throws Exception {
    byte[] full = GgufSamples.everything().toBytes();
    Path file = dir.resolve("cut.gguf");
    for (int length = 0; length < full.length; length++) {
      Files.write(file, Arrays.copyOf(full, length));
      try (GgufFile f = GgufReader.open(file)) {
        fail("truncated to %d of %d bytes but opened: %s", length, full.length, f.tensors());
      } catch (ModelFormatException e) {
        assertThat(e.getMessage()).startsWith("cut.gguf: ");
      }
    }
  }

  @Test
  void truncatedDataNamesTensorOffsetAndSize() throws Exception {
    byte[] full = GgufSamples.everything().toBytes();
    rejects(Arrays.copyOf(full, full.length - 1))
        .hasMessageMatching(
            "bad\\.gguf: tensor 'q4' data \\[offset \\d+, 54 bytes\\] extends past end of file"
                + " \\("
                + (full.length - 1)
                + " bytes\\)");
  }

  @Test
  void badMagicAndVersions() throws Exception {
    rejects(new GgufTestWriter().magic(0x12345678)).hasMessageContaining("bad magic 0x12345678");
    rejects(new GgufTestWriter().version(1))
        .hasMessageContaining("GGUF version 1 is not supported");
    rejects(new GgufTestWriter().version(0x03000000)).hasMessageContaining("big-endian GGUF");
    rejects(new GgufTestWriter().version(4)).hasMessageContaining("unsupported GGUF version 4");
    rejects(new byte[] {'G', 'G', 'U', 'F'}).hasMessageContaining("too small for a GGUF header");
    rejects(new byte[0]).hasMessageContaining("file is 0 bytes");
  }

  /** A header followed by one key whose value bytes the caller supplies. */
  private static byte[] withRawValue(int type, byte[] raw) {
    ByteBuffer b = ByteBuffer.allocate(24 + 8 + 1 + 4 + raw.length).order(ByteOrder.LITTLE_ENDIAN);
    b.putInt(0x46554747).putInt(3).putLong(0).putLong(1);
    b.putLong(1).put((byte) 'k').putInt(type).put(raw);
    return b.array();
  }

  private static byte[] le(long... values) {
    ByteBuffer b = ByteBuffer.allocate(values.length * 8).order(ByteOrder.LITTLE_ENDIAN);
    for (long v : values) {
      b.putLong(v);
    }
    return b.array();
  }

  @Test
  void hugeLengthsAndCountsFailFastWithoutAllocating() throws Exception {
    rejects(withRawValue(STRING.id(), le(1L << 60)))
        .hasMessageContaining("metadata key 'k' length")
        .hasMessageContaining("1152921504606846976 bytes");
    rejects(withRawValue(STRING.id(), le(-1L))).hasMessageContaining("18446744073709551615");
    // array of uint8, count 2^40
    ByteBuffer arr = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN);
    arr.putInt(UINT8.id()).putLong(1L << 40);
    rejects(withRawValue(ARRAY.id(), arr.array())).hasMessageContaining("array length");
    rejects(new GgufTestWriter().kvCountOverride(1L << 40)).hasMessageContaining("kv count");
    rejects(new GgufTestWriter().tensorCountOverride(Long.MAX_VALUE))
        .hasMessageContaining("tensor count");
    // A count that fits the file only if elements were smaller than their minimum size.
    ByteBuffer strings = ByteBuffer.allocate(12 + 16).order(ByteOrder.LITTLE_ENDIAN);
    strings.putInt(STRING.id()).putLong(3).putLong(0).putLong(0);
    rejects(withRawValue(ARRAY.id(), strings.array())).hasMessageContaining("array length");
  }

  @Test
  void nestingDepthIsLimited() throws Exception {
    Object v = new Array(INT32, List.of(1));
    for (int i = 0; i < GgufReader.MAX_ARRAY_DEPTH; i++) {
      v = new Array(ARRAY, List.of(v));
    }
    rejects(new GgufTestWriter().kv("deep", ARRAY, v)).hasMessageContaining("deeper than 8");
    // One level less is fine.
    Path ok =
        new GgufTestWriter()
            .kv("deep", ARRAY, ((Array) v).elements().get(0))
            .write(dir.resolve("ok.gguf"));
    try (GgufFile f = GgufReader.open(ok)) {
      assertThat(f.metadata().arrayElementType("deep")).contains(ARRAY);
    }
  }

  @Test
  void badValueTypesAndBools() throws Exception {
    rejects(withRawValue(13, new byte[8])).hasMessageContaining("unknown value type 13");
    rejects(withRawValue(BOOL.id(), new byte[] {2})).hasMessageContaining("expected 0 or 1");
    rejects(new GgufTestWriter().kv("a", INT32, 1).kv("a", INT32, 2))
        .hasMessage("bad.gguf: duplicate metadata key 'a'");
  }

  @Test
  void alignmentMustBeAPowerOfTwo() throws Exception {
    rejects(new GgufTestWriter().kv("general.alignment", UINT32, 24))
        .hasMessageContaining("general.alignment is 24");
    rejects(new GgufTestWriter().kv("general.alignment", UINT32, 0))
        .hasMessageContaining("general.alignment is 0");
    rejects(new GgufTestWriter().kv("general.alignment", STRING, "32"))
        .hasMessageContaining("'general.alignment' is string");
  }

  @Test
  void tensorPlacementErrors() throws Exception {
    rejects(new GgufTestWriter().tensorAt("t", 0, new long[] {4}, 8, new byte[16]))
        .hasMessage("bad.gguf: tensor 't' offset 8 is not a multiple of the alignment 32");
    rejects(new GgufTestWriter().tensorAt("t", 0, new long[] {4}, 1L << 40, new byte[0]))
        .hasMessageContaining("past end of file");
    rejects(new GgufTestWriter().tensorAt("t", 0, new long[] {4}, -32, new byte[0]))
        .hasMessageContaining("not a multiple of the alignment");
    rejects(new GgufTestWriter().tensor("t", 0, new long[] {4}, new byte[8]))
        .hasMessageMatching(
            "bad\\.gguf: tensor 't' data \\[offset \\d+, 16 bytes\\] extends past end of file .*");
    rejects(
            new GgufTestWriter()
                .tensor("dup", 0, new long[] {1}, new byte[4])
                .tensor("dup", 0, new long[] {1}, new byte[4]))
        .hasMessage("bad.gguf: duplicate tensor name 'dup'");
  }

  @Test
  void dimensionErrors() throws Exception {
    rejects(new GgufTestWriter().tensor("t", 0, new long[] {1L << 32, 1L << 32}, new byte[0]))
        .hasMessageContaining("overflow the element count");
    rejects(new GgufTestWriter().tensor("t", 0, new long[] {1L << 62}, new byte[0]))
        .hasMessageContaining("tensor 't' of type F32");
    rejects(new GgufTestWriter().tensor("t", 0, new long[] {-1}, new byte[0]))
        .hasMessageContaining("dimension 0 is 18446744073709551615");
    rejects(new GgufTestWriter().tensor("t", 0, new long[] {1, 1, 1, 1, 1}, new byte[4]))
        .hasMessageContaining("5 dimensions");
    rejects(new GgufTestWriter().tensor("t", GgmlType.Q8_0.id(), new long[] {16, 2}, new byte[34]))
        .hasMessageContaining("ne0 = 16, not a multiple of the block size 32");
  }
}
