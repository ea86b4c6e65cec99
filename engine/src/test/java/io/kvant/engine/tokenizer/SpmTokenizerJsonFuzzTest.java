package io.kvant.engine.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * SentencePiece-style {@code tokenizer.json} files (TinyStories-656K's, as published) that are
 * corrupted or hostile must end in a {@link TokenizerFormatException}, and whatever still parses
 * must encode and decode without failing.
 */
class SpmTokenizerJsonFuzzTest {
  private static final String SAMPLE = "Lily saw a big 🙂 ball, é!  </s> ok";

  static byte[] published() throws Exception {
    return Files.readAllBytes(TestModels.require("tinystories-656k/tokenizer.json"));
  }

  @Test
  void thePublishedFileLoadsAsSentencePieceStyle(@TempDir Path dir) throws Exception {
    Tokenizer t = HfTokenizerJson.load(write(dir, published()), null);
    assertThat(t).isInstanceOf(MergeRankedSpmTokenizer.class);
    assertThat(t.bos()).isEqualTo(1);
    // The EOS comes from tokenizer_config.json (HuggingFaceTokenizers), not from this file alone.
    assertThat(HfTokenizerJson.load(write(dir, published()), "<|end_story|>").eos()).isEqualTo(2);
  }

  @Test
  void unsupportedNormalizerIsNamed(@TempDir Path dir) throws Exception {
    String json =
        new String(published(), StandardCharsets.UTF_8)
            .replaceFirst("\"type\": ?\"Replace\"", "\"type\": \"Lowercase\", \"x\": \"Replace\"");
    // Still recognised by its Prepend step, then refused by name.
    assertThatThrownBy(
            () -> HfTokenizerJson.load(write(dir, json.getBytes(StandardCharsets.UTF_8)), null))
        .isInstanceOf(TokenizerFormatException.class)
        .hasMessageContaining("Lowercase");
  }

  @Test
  void mergeOfUnknownTokensIsRefused(@TempDir Path dir) throws Exception {
    String json =
        new String(published(), StandardCharsets.UTF_8)
            .replaceFirst("\"merges\": ?\\[", "\"merges\": [\"zzq qqz\",");
    assertThatThrownBy(
            () -> HfTokenizerJson.load(write(dir, json.getBytes(StandardCharsets.UTF_8)), null))
        .isInstanceOf(TokenizerFormatException.class)
        .hasMessageContaining("merge 0");
  }

  @Property(tries = 150)
  void mutatedFilesFailOnlyWithFormatExceptions(
      @ForAll @IntRange(min = 1, max = 8) int mutations, @ForAll long seed) throws Exception {
    byte[] file = published();
    Random random = new Random(seed);
    for (int i = 0; i < mutations; i++) {
      int at = random.nextInt(file.length);
      file[at] = random.nextBoolean() ? (byte) random.nextInt(128) : (byte) (file[at] ^ 0x20);
    }
    if (random.nextInt(4) == 0) {
      file = Arrays.copyOf(file, random.nextInt(file.length));
    }
    Path dir = Files.createTempDirectory("spm-fuzz");
    Path path = write(dir, file);
    Tokenizer tokenizer;
    try {
      tokenizer = HfTokenizerJson.load(path, null);
    } catch (TokenizerFormatException expected) {
      return;
    } finally {
      Files.delete(path);
      Files.delete(dir);
    }
    int[] ids = tokenizer.encode(SAMPLE, true);
    assertThat(tokenizer.decode(ids)).isNotNull();
  }

  private static Path write(Path dir, byte[] bytes) throws Exception {
    return Files.write(dir.resolve("tokenizer.json"), bytes);
  }
}
