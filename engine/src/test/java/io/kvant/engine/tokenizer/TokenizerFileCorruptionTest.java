package io.kvant.engine.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.IntRange;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Truncated, corrupted and hostile tokenizer files must end in a {@link TokenizerFormatException}
 * (an {@link java.io.IOException}), never another exception or a huge allocation.
 */
class TokenizerFileCorruptionTest {

  /** A small but realistic tokenizer.model: the byte tokens and a few merges. */
  static byte[] smallModel() {
    SmallVocab v = new SmallVocab(true);
    for (String piece : new String[] {"▁", "a", "b", "▁a", "ab", "▁ab", "é"}) {
      v.add(piece, -v.pieces.size());
    }
    return v.toModelProto();
  }

  /**
   * Every cut near the start and the end of a file (headers, last fields), every third one in
   * between: dense enough to hit every field of every kind, cheap enough to run on each build.
   */
  private static int nextCut(int cut, int length) {
    return cut < 64 || cut > length - 64 ? cut + 1 : cut + 3;
  }

  @Test
  void tok512BinTruncatedAnywhereIsRejected() throws Exception {
    byte[] file = Files.readAllBytes(TestModels.stories260KTokenizerBin());
    for (int cut = 0; cut < file.length; cut = nextCut(cut, file.length)) {
      byte[] truncated = Arrays.copyOf(file, cut);
      int at = cut;
      assertThatThrownBy(() -> Llama2cTokenizerFile.parse(truncated, 512, "tok512.bin"))
          .as("cut at %d", at)
          .isInstanceOf(TokenizerFormatException.class)
          .hasMessageStartingWith("tok512.bin: ");
    }
    assertThat(Llama2cTokenizerFile.parse(file, 512, "tok512.bin").vocabSize()).isEqualTo(512);
  }

  @Test
  void smallModelTruncatedAnywhereFailsOrParsesOnlyAtMessageBoundaries() throws Exception {
    byte[] file = smallModel();
    int parsed = 0;
    for (int cut = 0; cut < file.length; cut = nextCut(cut, file.length)) {
      byte[] truncated = Arrays.copyOf(file, cut);
      Throwable thrown = catchThrowable(() -> SentencePieceModelFile.parse(truncated, "m"));
      if (thrown == null) {
        parsed++; // a cut between two complete top-level fields is a valid, shorter message
      } else {
        assertThat(thrown).as("cut at %d", cut).isInstanceOf(TokenizerFormatException.class);
      }
    }
    // Pieces come first and trainer_spec (which says "BPE") after them, so only the few cuts
    // after trainer_spec, between the last top-level fields, can parse.
    assertThat(parsed).isBetween(1, 3);
  }

  @Test
  void realLlamaFilesTruncatedAreRejected(@TempDir Path dir) throws Exception {
    byte[] bin = Files.readAllBytes(TestModels.llama2TokenizerBin());
    byte[] model = Files.readAllBytes(TestModels.llama2TokenizerModel());
    for (int i = 0; i < 10; i++) {
      int binCut = (int) ((long) bin.length * i / 10) + 3;
      Path truncatedBin = dir.resolve("tokenizer-" + i + ".bin");
      Files.write(truncatedBin, Arrays.copyOf(bin, binCut));
      assertThatThrownBy(() -> Llama2cTokenizerFile.read(truncatedBin, 32000))
          .isInstanceOf(TokenizerFormatException.class)
          .hasMessageContaining(truncatedBin.toString());
      // Cuts inside the 32000 pieces (the first ~98% of the file) leave no trainer_spec, or break
      // a field: either way an error.
      int modelCut = (int) ((long) model.length * i / 11) + 5;
      assertThatThrownBy(() -> SentencePieceModelFile.parse(Arrays.copyOf(model, modelCut), "m"))
          .isInstanceOf(TokenizerFormatException.class);
    }
  }

  @Test
  void hugeLengthsAreRejectedWithoutAllocating() {
    ByteBuffer bin = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
    bin.putInt(Integer.MAX_VALUE).putFloat(0f).putInt(Integer.MAX_VALUE).putInt(0);
    assertThatThrownBy(() -> Llama2cTokenizerFile.parse(bin.array(), 1, "huge.bin"))
        .isInstanceOf(TokenizerFormatException.class)
        .hasMessageContaining("token 0");
    assertThatThrownBy(() -> Llama2cTokenizerFile.parse(bin.array(), Integer.MAX_VALUE, "n.bin"))
        .isInstanceOf(TokenizerFormatException.class)
        .hasMessageContaining("truncated");
    // A piece field claiming 2^62 bytes.
    byte[] model = {
      0x0A,
      (byte) 0x80,
      (byte) 0x80,
      (byte) 0x80,
      (byte) 0x80,
      (byte) 0x80,
      (byte) 0x80,
      (byte) 0x80,
      (byte) 0x80,
      0x40,
      0x00
    };
    assertThatThrownBy(() -> SentencePieceModelFile.parse(model, "huge.model"))
        .isInstanceOf(TokenizerFormatException.class)
        .hasMessageContaining("runs past the end");
    // An endless varint.
    byte[] varint = new byte[20];
    Arrays.fill(varint, (byte) 0xFF);
    assertThatThrownBy(() -> SentencePieceModelFile.parse(varint, "v.model"))
        .isInstanceOf(TokenizerFormatException.class)
        .hasMessageContaining("varint");
  }

  @Test
  void wrongWireTypesAndGroupsAreRejected() {
    // pieces (field 1) as a varint instead of a message.
    assertThatThrownBy(() -> SentencePieceModelFile.parse(new byte[] {0x08, 0x01}, "w.model"))
        .isInstanceOf(TokenizerFormatException.class)
        .hasMessageContaining("wire type");
    // An unknown field with the deprecated group wire type.
    assertThatThrownBy(() -> SentencePieceModelFile.parse(new byte[] {0x7B}, "g.model"))
        .isInstanceOf(TokenizerFormatException.class)
        .hasMessageContaining("wire type 3");
  }

  @Test
  void invalidUtf8PiecesAreRejected() {
    ByteBuffer bin = ByteBuffer.allocate(14).order(ByteOrder.LITTLE_ENDIAN);
    bin.putInt(2).putFloat(0f).putInt(2).put((byte) 0xC3).put((byte) 0x28);
    assertThatThrownBy(() -> Llama2cTokenizerFile.parse(bin.array(), 1, "utf.bin"))
        .isInstanceOf(TokenizerFormatException.class)
        .hasMessageContaining("UTF-8");
  }

  /** An intact file and which reader it is for. */
  record Sample(boolean isModelProto, byte[] bytes) {
    @Override
    public String toString() {
      return (isModelProto ? "tokenizer.model" : "tok512.bin") + " (" + bytes.length + " bytes)";
    }
  }

  @Property(tries = 300)
  void mutatedFilesFailOnlyWithFormatExceptions(
      @ForAll("files") Sample sample,
      @ForAll @IntRange(min = 1, max = 8) int mutations,
      @ForAll long seed) {
    byte[] file = sample.bytes().clone();
    Random random = new Random(seed);
    for (int i = 0; i < mutations; i++) {
      int at = random.nextInt(file.length);
      file[at] = random.nextBoolean() ? (byte) random.nextInt(256) : (byte) (file[at] ^ 0x80);
    }
    if (random.nextInt(4) == 0) {
      file = Arrays.copyOf(file, random.nextInt(file.length));
    }
    SentencePieceBpeTokenizer tokenizer;
    try {
      tokenizer =
          sample.isModelProto()
              ? SentencePieceModelFile.parse(file, "fuzz.model")
              : Llama2cTokenizerFile.parse(file, -1, "fuzz.bin");
    } catch (TokenizerFormatException expected) {
      return;
    }
    // Whatever parsed must still encode and decode without failing.
    int[] ids = tokenizer.encode("Lily saw a big 🙂 ball, é!", true);
    assertThat(tokenizer.decode(ids)).isNotNull();
  }

  @Provide
  Arbitrary<Sample> files() throws Exception {
    return Arbitraries.of(
        new Sample(false, Files.readAllBytes(TestModels.stories260KTokenizerBin())),
        new Sample(true, smallModel()));
  }
}
