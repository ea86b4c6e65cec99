package io.kvant.engine.format.llama2c;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.fail;

import io.kvant.engine.format.ModelFormatException;
import io.kvant.engine.testing.SharedModels;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class Llama2cReaderTest {
  private static final ValueLayout.OfFloat F32 =
      ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  @TempDir Path dir;

  private Path write(byte[] content) throws Exception {
    return Files.write(dir.resolve("model.bin"), content);
  }

  private static float first(MemorySegment s) {
    return s.get(F32, 0);
  }

  @Test
  void realStories260KHeaderAndLayout() throws Exception {
    Path path = SharedModels.require("stories260K/stories260K.bin");
    try (Llama2cCheckpoint c = Llama2cReader.open(path)) {
      assertThat(c.config()).isEqualTo(new Llama2cConfig(64, 172, 5, 8, 4, 512, 512, true));
      assertThat(c.config().headSize()).isEqualTo(8);
      assertThat(c.config().kvDim()).isEqualTo(32);
      assertThat(c.segment("token_embedding").byteSize()).isEqualTo(512L * 64 * 4);
      assertThat(c.segment("wk", 4).byteSize()).isEqualTo(32L * 64 * 4);
      assertThat(c.segment("w2", 0).byteSize()).isEqualTo(64L * 172 * 4);
      assertThat(c.segment("freq_cis_real").byteSize()).isEqualTo(512L * 4 * 4);
      // Shared classifier: wcls is the embedding itself.
      assertThat(c.segment("wcls").address()).isEqualTo(c.segment("token_embedding").address());
      // RoPE table row 0 is cos(0) = 1 and the last array ends exactly at the end of the file.
      assertThat(first(c.segment("freq_cis_real"))).isEqualTo(1f);
      MemorySegment imag = c.segment("freq_cis_imag");
      assertThat(c.offset(Llama2cTensor.FREQ_CIS_IMAG) + imag.byteSize())
          .isEqualTo(Files.size(path));
    }
  }

  @Test
  void syntheticOffsetsFollowTheLegacyOrder() throws Exception {
    try (Llama2cCheckpoint c = Llama2cReader.open(write(Llama2cSamples.small(false)))) {
      Llama2cConfig cfg = c.config();
      assertThat(cfg).isEqualTo(new Llama2cConfig(8, 12, 2, 2, 1, 10, 4, true));
      // Float i holds value i, so each segment's first value is its float offset.
      float at = 0;
      assertThat(first(c.segment("token_embedding"))).isEqualTo(at);
      at += 80;
      assertThat(first(c.segment("rms_att", 1))).isEqualTo(at + 8);
      at += 16;
      assertThat(first(c.segment("wq", 0))).isEqualTo(at);
      assertThat(first(c.segment("wq", 1))).isEqualTo(at + 64);
      at += 128;
      assertThat(first(c.segment("wk", 1))).isEqualTo(at + 32);
      at += 64;
      assertThat(first(c.segment("wv"))).isEqualTo(at);
      at += 64;
      assertThat(first(c.segment("wo"))).isEqualTo(at);
      at += 128;
      assertThat(first(c.segment("rms_ffn"))).isEqualTo(at);
      at += 16;
      assertThat(first(c.segment("w1", 1))).isEqualTo(at + 96);
      at += 192;
      assertThat(first(c.segment("w2"))).isEqualTo(at);
      at += 192;
      assertThat(first(c.segment(Llama2cTensor.W3, 0))).isEqualTo(at);
      at += 192;
      assertThat(first(c.segment("rms_final"))).isEqualTo(at);
      at += 8;
      assertThat(first(c.segment("freq_cis_real"))).isEqualTo(at);
      at += 8;
      MemorySegment imag = c.segment("freq_cis_imag");
      assertThat(first(imag)).isEqualTo(at);
      assertThat(imag.getAtIndex(F32, 7)).isEqualTo(at + 7);
      assertThat(c.segment("wq").byteSize()).isEqualTo(2 * 64 * 4);
    }
  }

  @Test
  void separateClassifierFollowsTheRopeTables() throws Exception {
    byte[] content = Llama2cSamples.small(true);
    try (Llama2cCheckpoint c = Llama2cReader.open(write(content))) {
      assertThat(c.config().sharedClassifier()).isFalse();
      assertThat(c.config().vocabSize()).isEqualTo(10);
      MemorySegment wcls = c.segment("wcls");
      assertThat(wcls.byteSize()).isEqualTo(80 * 4);
      assertThat(c.offset(Llama2cTensor.WCLS) + wcls.byteSize()).isEqualTo(content.length);
      assertThat(first(wcls)).isEqualTo((content.length - 28) / 4 - 80);
    }
  }

  @Test
  void callerErrors() throws Exception {
    try (Llama2cCheckpoint c = Llama2cReader.open(write(Llama2cSamples.small(false)))) {
      assertThatThrownBy(() -> c.segment("wz")).isInstanceOf(IllegalArgumentException.class);
      assertThatThrownBy(() -> c.segment("wq", 2)).isInstanceOf(IndexOutOfBoundsException.class);
      assertThatThrownBy(() -> c.segment("rms_final", 0))
          .isInstanceOf(IllegalArgumentException.class);
    }
  }

  @Test
  void sizeMismatchIsReportedWithBothSizes() throws Exception {
    byte[] shared = Llama2cSamples.small(false);
    assertThatThrownBy(() -> Llama2cReader.open(write(Arrays.copyOf(shared, shared.length + 4))))
        .isInstanceOf(ModelFormatException.class)
        .hasMessage(
            "model.bin: file is 4416 bytes but header (dim=8, hidden_dim=12, n_layers=2,"
                + " n_heads=2, n_kv_heads=1, vocab_size=10, seq_len=4) implies 4412 bytes (shared"
                + " classifier; 4732 with a separate wcls)");
    byte[] separate = Llama2cSamples.small(true);
    assertThatThrownBy(
            () -> Llama2cReader.open(write(Arrays.copyOf(separate, separate.length - 80 * 4))))
        .isInstanceOf(ModelFormatException.class)
        .hasMessageContaining("implies 4732 bytes (separate wcls; 4412 with a shared classifier)");
  }

  @Test
  void badHeadersAndNewerExports() throws Exception {
    ByteBuffer ak42 = ByteBuffer.allocate(256).order(ByteOrder.LITTLE_ENDIAN);
    ak42.putInt(0x616b3432).putInt(1);
    assertThatThrownBy(() -> Llama2cReader.open(write(ak42.array())))
        .isInstanceOf(ModelFormatException.class)
        .hasMessage(
            "model.bin: llama2.c export version 1 (magic \"ak42\") is not supported; only the"
                + " legacy version-0 checkpoint is");
    byte[] oddHeads = Llama2cSamples.small(false);
    ByteBuffer.wrap(oddHeads).order(ByteOrder.LITTLE_ENDIAN).putInt(12, 3);
    assertThatThrownBy(() -> Llama2cReader.open(write(oddHeads)))
        .isInstanceOf(ModelFormatException.class)
        .hasMessageContaining("dim is not a multiple of n_heads");
    byte[] huge = Llama2cSamples.small(false);
    ByteBuffer.wrap(huge)
        .order(ByteOrder.LITTLE_ENDIAN)
        .putInt(0, 1 << 30)
        .putInt(4, Integer.MAX_VALUE)
        .putInt(8, Integer.MAX_VALUE)
        .putInt(12, 1 << 29)
        .putInt(16, 1 << 29);
    assertThatThrownBy(() -> Llama2cReader.open(write(huge)))
        .isInstanceOf(ModelFormatException.class)
        .hasMessageContaining("overflows 64 bits");
  }

  @Test
  void truncationIsAModelFormatException() throws Exception {
    byte[] full = Llama2cSamples.small(true);
    Path file = dir.resolve("cut.bin");
    // Every length through the header and first floats, then a stride (past the header the only
    // check is the total size, and opening thousands of files costs seconds).
    for (int length = 0; length < full.length; length += length < 64 ? 1 : 13) {
      Files.write(file, Arrays.copyOf(full, length));
      try (Llama2cCheckpoint c = Llama2cReader.open(file)) {
        fail("truncated to %d bytes but opened as %s", length, c.config());
      } catch (ModelFormatException e) {
        assertThat(e.getMessage()).startsWith("cut.bin: ");
      }
    }
  }
}
