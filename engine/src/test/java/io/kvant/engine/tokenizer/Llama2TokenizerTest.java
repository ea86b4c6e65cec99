package io.kvant.engine.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The real 32k Llama-2 vocabulary, loaded both from {@code tokenizer.model} (protobuf) and from
 * llama2.c's {@code tokenizer.bin}. Expected encodings are derived from the SentencePiece BPE rules
 * and the vocabulary itself: each test looks the pieces up so that the reasoning is checkable.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class Llama2TokenizerTest {
  private SentencePieceBpeTokenizer model;
  private SentencePieceBpeTokenizer bin;

  @BeforeAll
  void load() throws IOException {
    model = SentencePieceModelFile.read(TestModels.llama2TokenizerModel());
    bin = Llama2cTokenizerFile.read(TestModels.llama2TokenizerBin(), 32000);
  }

  static Stream<String> corpus() {
    return Stream.of(
        "",
        "Hello world",
        "The quick brown fox jumps over the lazy dog. It's 3:45pm, isn't it?",
        "Once upon a time, there was a little girl named Lily.",
        "café, naïve, über, jalapeño, Ñandú, façade",
        "中文分词测试",
        "日本語のテキスト、カタカナとひらがな。",
        "한국어 문장",
        "emoji 🙂 thumbs 👍🏽 family 👨‍👩‍👧‍👦 flag 🇫🇷",
        "   three leading spaces",
        "trailing spaces   ",
        "runs    of     spaces",
        "tabs\tand\t\ttabs",
        "line one\nline two\n\n\nline five\r\n",
        " ",
        "\n",
        "<s> and </s> are just text here",
        "math: ∑ x² ≤ ∞, arrows → ←",
        "mixed: Ελληνικά, русский, עברית, العربية");
  }

  @Test
  void vocabularyShape() {
    assertThat(model.vocabSize()).isEqualTo(32000);
    assertThat(bin.vocabSize()).isEqualTo(32000);
    assertThat(model.unk()).isZero();
    assertThat(model.bos()).isEqualTo(1);
    assertThat(model.eos()).isEqualTo(2);
    assertThat(bin.bos()).isEqualTo(1);
    assertThat(bin.eos()).isEqualTo(2);
    assertThat(model.piece(1)).isEqualTo("<s>");
    assertThat(bin.piece(1)).isEqualTo("<s>");
    assertThat(model.isControl(1)).isTrue();
    assertThat(model.isControl(2)).isTrue();
    assertThat(model.isControl(15043)).isFalse();
    assertThat(model.normalizer()).isEqualTo(SentencePieceNormalizer.LLAMA);
    for (int id = 0; id < 32000; id++) {
      assertThat(bin.piece(id)).as("piece %d", id).isEqualTo(model.piece(id));
      assertThat(bin.type(id)).as("type %d", id).isEqualTo(model.type(id));
    }
    // Byte-fallback tokens follow <unk>, <s>, </s>: byte b has id b + 3.
    for (int b = 0; b < 256; b++) {
      assertThat(model.piece(b + 3)).isEqualTo(String.format("<0x%02X>", b));
      assertThat(model.tokenBytes(b + 3)).containsExactly((byte) b);
    }
  }

  @ParameterizedTest
  @MethodSource("corpus")
  void modelAndBinEncodeIdentically(String text) {
    assertThat(bin.encode(text)).isEqualTo(model.encode(text));
    assertThat(bin.encode(text, true)).isEqualTo(model.encode(text, true));
  }

  @ParameterizedTest
  @MethodSource("corpus")
  void roundTrips(String text) {
    assertThat(model.decode(model.encode(text))).isEqualTo(text);
    assertThat(model.decode(model.encode(text, true))).isEqualTo(text);
    assertThat(bin.decode(bin.encode(text, true))).isEqualTo(text);
  }

  @ParameterizedTest
  @MethodSource("corpus")
  void incrementalDecodingMatchesDecode(String text) {
    int[] ids = model.encode(text, true);
    IncrementalDecoder decoder = model.newDecoder();
    StringBuilder streamed = new StringBuilder();
    for (int id : ids) {
      streamed.append(decoder.append(id));
    }
    streamed.append(decoder.flush());
    assertThat(streamed.toString()).isEqualTo(model.decode(ids)).isEqualTo(text);
  }

  @Test
  void helloWorldIsTwoWholeWordPieces() {
    // Normalized text is "▁Hello▁world". Both "▁Hello" and "▁world" are pieces, and no piece spans
    // the inner "▁" boundary, so BPE ends with exactly these two.
    assertEncoding("Hello world", List.of("▁Hello", "▁world"), 15043, 3186);
    assertThat(model.encode("Hello world", true)).containsExactly(1, 15043, 3186);
    assertThat(idOf("▁Hello▁world")).isEqualTo(-1);
  }

  @Test
  void leadingSpaceLeavesALoneMarker() {
    // " Hello" normalizes to "▁▁Hello". "▁▁Hello" is not a piece, and "▁▁" has the lowest score of
    // the vocabulary (-1e9), so "▁Hello" forms first and the first marker stays alone.
    assertThat(idOf("▁▁Hello")).isEqualTo(-1);
    assertThat(model.score(idOf("▁▁"))).isEqualTo(-1e9f);
    assertEncoding(" Hello", List.of("▁", "▁Hello"), 29871, 15043);
    // Decoding drops only the dummy prefix, so the user's space survives.
    assertThat(model.decode(new int[] {1, 29871, 15043})).isEqualTo(" Hello");
  }

  @Test
  void characterOutsideVocabularyFallsBackToUtf8Bytes() {
    // U+1F642 (🙂) has no piece, so its UTF-8 bytes F0 9F 99 82 become <0xF0> <0x9F> <0x99>
    // <0x82>, ids byte + 3. The dummy prefix "▁" cannot merge with a byte token, so it stays.
    assertThat(idOf("🙂")).isEqualTo(-1);
    assertThat(idOf("▁🙂")).isEqualTo(-1);
    assertEncoding(
        "🙂",
        List.of("▁", "<0xF0>", "<0x9F>", "<0x99>", "<0x82>"),
        29871,
        0xF0 + 3,
        0x9F + 3,
        0x99 + 3,
        0x82 + 3);
  }

  @Test
  void controlCharactersUseByteTokens() {
    // Tab and newline are not pieces in Llama's vocabulary (SentencePiece with byte fallback keeps
    // them as bytes): "a\tb\nc" is "▁a", <0x09>, "b", <0x0A>, "c".
    assertThat(idOf("\t")).isEqualTo(-1);
    assertThat(idOf("\n")).isEqualTo(-1);
    assertEncoding(
        "a\tb\nc", List.of("▁a", "<0x09>", "b", "<0x0A>", "c"), 263, 12, 29890, 13, 29883);
  }

  @Test
  void cjkCharactersArePiecesButDoNotMergeWithTheMarker() {
    // "中" and "文" are single-character pieces; neither "▁中" nor "中文" exists, so nothing merges.
    assertThat(idOf("▁中")).isEqualTo(-1);
    assertThat(idOf("中文")).isEqualTo(-1);
    assertEncoding("中文", List.of("▁", "中", "文"), 29871, 30275, 30333);
  }

  @Test
  void controlPiecesInTextAreOrdinaryCharacters() {
    // SentencePiece never produces control tokens from text: "<s>" is "▁<", "s", ">".
    assertEncoding("<s>", List.of("▁<", "s", ">"), 529, 29879, 29958);
  }

  @Test
  void emptyTextHasNoTokensAndNoDummyPrefix() {
    assertThat(model.encode("")).isEmpty();
    assertThat(model.encode("", true)).containsExactly(1);
    assertThat(model.decode(new int[] {1, 2})).isEmpty();
  }

  @Test
  void highestScoringPairMergesFirst() {
    // "  x" normalizes to "▁▁▁x". Candidate pairs are "▁▁" (score -1e9) and "▁x"; "▁x" scores
    // higher, so it forms first, then the two remaining markers merge into "▁▁".
    int pairX = idOf("▁x");
    assertThat(model.score(pairX)).isGreaterThan(model.score(idOf("▁▁")));
    assertThat(idOf("▁▁▁x")).isEqualTo(-1);
    assertEncoding("  x", List.of("▁▁", "▁x"), 259, pairX);
  }

  @Test
  void decodeSkipsControlTokensAndStripsOnlyTheDummyPrefix() {
    assertThat(model.decode(new int[] {1, 15043, 3186, 2})).isEqualTo("Hello world");
    // Without a sequence start (a continuation, e.g. generated tokens), the space is real text.
    IncrementalDecoder continuation = model.newDecoder(false);
    assertThat(continuation.append(3186)).isEqualTo(" world");
    // ...but after a BOS the first piece loses it again (llama2.c's rule).
    assertThat(continuation.append(1)).isEmpty();
    assertThat(continuation.append(15043)).isEqualTo("Hello");
    // A decoder from the sequence start strips once, not for every token.
    IncrementalDecoder fromStart = model.newDecoder();
    assertThat(fromStart.append(15043)).isEqualTo("Hello");
    assertThat(fromStart.append(3186)).isEqualTo(" world");
  }

  @Test
  void tokenBytesGiveRawBytesWithSpacesRestored() {
    assertThat(model.tokenBytes(15043)).isEqualTo(" Hello".getBytes());
    assertThat(model.tokenBytes(1)).isEmpty();
    assertThat(model.piece(15043)).isEqualTo("▁Hello");
  }

  @Test
  void encodesLargeTextQuickly() {
    StringBuilder sb = new StringBuilder();
    while (sb.length() < 100_000) {
      sb.append("The quick brown fox jumps over the lazy dog, 中文 🙂 ")
          .append(sb.length())
          .append('\n');
    }
    String text = sb.toString();
    long start = System.nanoTime();
    int[] ids = model.encode(text);
    long millis = (System.nanoTime() - start) / 1_000_000;
    // Not a timed assertion (shared CI machines vary); the time is reported for humans.
    System.out.println(
        "encoded " + text.length() + " chars to " + ids.length + " ids in " + millis + " ms");
    assertThat(model.decode(ids)).isEqualTo(text);
  }

  private void assertEncoding(String text, List<String> pieces, int... ids) {
    int[] actual = model.encode(text);
    assertThat(Arrays.stream(actual).mapToObj(model::piece).toList())
        .as("pieces of %s", text)
        .isEqualTo(pieces);
    assertThat(actual).as("ids of %s", text).containsExactly(ids);
    for (int i = 0; i < ids.length; i++) {
      assertThat(idOf(pieces.get(i))).isEqualTo(ids[i]);
    }
  }

  /** The id of a piece, found by scanning the vocabulary; -1 if absent. */
  private int idOf(String piece) {
    for (int id = 0; id < model.vocabSize(); id++) {
      if (model.piece(id).equals(piece)) {
        return id;
      }
    }
    return -1;
  }
}
