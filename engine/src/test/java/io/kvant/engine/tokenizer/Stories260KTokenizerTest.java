package io.kvant.engine.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The 512-token TinyStories vocabulary of stories260K: llama2.c's {@code tok512.bin} and the same
 * vocabulary handed over as GGUF-style arrays must behave identically, and the golden greedy output
 * from {@code stories260K/SOURCE.md} must decode to the documented text.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class Stories260KTokenizerTest {
  /** BOS, then the first 48 greedy ids from SOURCE.md. */
  static final int[] GOLDEN = {
    1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396,
    267, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385, 328, 432, 358, 394, 261,
    370, 432, 352, 266, 268, 388, 426, 338, 391, 266, 267
  };

  static final String GOLDEN_TEXT =
      "Once upon a time, there was a little girl named Lily. She loved to play outside in the park."
          + " One day, she saw a big, red ball. She wanted to";

  private SentencePieceBpeTokenizer bin;
  private SentencePieceBpeTokenizer gguf;

  @BeforeAll
  void load() throws IOException {
    bin = Llama2cTokenizerFile.read(TestModels.stories260KTokenizerBin(), 512);
    gguf = fromGgufArrays(Files.readAllBytes(TestModels.stories260KTokenizerBin()));
  }

  /**
   * Rebuilds what the GGUF file holds from tok512.bin by undoing llama2.c's export rule
   * (SOURCE.md): spaces back to U+2581, "\n<s>\n"/"\n</s>\n" back to "<s>"/"</s>", and the GGUF
   * token types 2 (unknown) for id 0, 3 (control) for ids 1-2, 6 (byte) for ids 3-258, 1 (normal)
   * after.
   */
  private static SentencePieceBpeTokenizer fromGgufArrays(byte[] file)
      throws TokenizerFormatException {
    ByteBuffer in = ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN);
    in.getInt(); // max_token_length
    String[] tokens = new String[512];
    float[] scores = new float[512];
    int[] types = new int[512];
    for (int id = 0; id < 512; id++) {
      scores[id] = in.getFloat();
      byte[] raw = new byte[in.getInt()];
      in.get(raw);
      String piece = new String(raw, StandardCharsets.UTF_8);
      tokens[id] =
          switch (id) {
            case 1 -> "<s>";
            case 2 -> "</s>";
            default -> piece.replace(' ', '\u2581');
          };
      types[id] = id == 0 ? 2 : id <= 2 ? 3 : id <= 258 ? 6 : 1;
    }
    return SentencePieceBpeTokenizer.fromGguf(tokens, scores, types, 1, 2, 0, true);
  }

  @Test
  void vocabularyMatchesSourceDescription() {
    assertThat(bin.vocabSize()).isEqualTo(512);
    assertThat(bin.piece(0)).isEqualTo("<unk>");
    assertThat(bin.type(0)).isEqualTo(TokenType.UNKNOWN);
    assertThat(bin.piece(3)).isEqualTo("<0x00>");
    assertThat(bin.piece(258)).isEqualTo("<0xFF>");
    // Merges have score -(id - 259): " t" is the first merge learned.
    assertThat(bin.piece(259)).isEqualTo("▁t");
    assertThat(bin.score(259)).isEqualTo(0f);
    assertThat(bin.score(300)).isEqualTo(-41f);
    for (int id = 0; id < 512; id++) {
      assertThat(gguf.piece(id)).isEqualTo(bin.piece(id));
      assertThat(gguf.type(id)).isEqualTo(bin.type(id));
    }
  }

  @Test
  void goldenIdsDecodeToTheDocumentedStory() {
    assertThat(GOLDEN).hasSize(49);
    // The first piece after BOS is "▁Once"; its marker is the dummy prefix and is dropped.
    assertThat(bin.piece(GOLDEN[1])).isEqualTo("▁Once");
    assertThat(bin.decode(GOLDEN)).isEqualTo(GOLDEN_TEXT);
    assertThat(gguf.decode(GOLDEN)).isEqualTo(GOLDEN_TEXT);
  }

  @Test
  void encodingTheStoryGivesTheGoldenIds() {
    // The model's greedy tokens happen to be the canonical BPE segmentation of its own text.
    assertThat(bin.encode(GOLDEN_TEXT, true)).isEqualTo(GOLDEN);
    assertThat(gguf.encode(GOLDEN_TEXT, true)).isEqualTo(GOLDEN);
  }

  @Test
  void binAndGgufArraysEncodeIdentically() {
    for (String text :
        new String[] {
          "",
          "Lily and her mom went to the park.",
          "  Spaces,\ttabs\nand newlines\n",
          "Ünïcödé 中文 🙂 👍🏽",
          "\"Don't worry, Lily. We can help you.\""
        }) {
      int[] ids = bin.encode(text, true);
      assertThat(gguf.encode(text, true)).as(text).isEqualTo(ids);
      assertThat(bin.decode(ids)).isEqualTo(text);
    }
  }

  @Test
  void streamingTheGoldenIdsMatchesDecode() {
    IncrementalDecoder decoder = bin.newDecoder();
    StringBuilder text = new StringBuilder();
    for (int id : GOLDEN) {
      text.append(decoder.append(id));
    }
    assertThat(decoder.flush()).isEmpty();
    assertThat(text.toString()).isEqualTo(GOLDEN_TEXT);
  }
}
