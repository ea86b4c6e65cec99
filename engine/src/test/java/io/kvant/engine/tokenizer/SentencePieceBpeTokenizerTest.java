package io.kvant.engine.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

/** SentencePiece BPE rules on small hand-made vocabularies whose answers are easy to derive. */
class SentencePieceBpeTokenizerTest {
  private static final SentencePieceNormalizer PLAIN =
      new SentencePieceNormalizer(false, false, false);

  @Test
  void tiedScoresMergeTheLeftmostPairFirst() throws Exception {
    SmallVocab v = new SmallVocab(true);
    int a = v.add("a", -10);
    int b = v.add("b", -10);
    int c = v.add("c", -10);
    int ab = v.add("ab", -1);
    int bc = v.add("bc", -1);
    SentencePieceBpeTokenizer t = v.build(PLAIN);
    // "ab" and "bc" tie; "ab" is further left, and once it forms, "bc" is no longer possible.
    assertThat(t.encode("abc")).containsExactly(ab, c);
    // Elsewhere the leftmost of the tied pairs wins too.
    assertThat(t.encode("cab")).containsExactly(c, ab);
    assertThat(t.encode("bca")).containsExactly(bc, a);
    assertThat(t.encode("b")).containsExactly(b);
  }

  @Test
  void higherScoreWinsWhereverItIs() throws Exception {
    SmallVocab v = new SmallVocab(true);
    int a = v.add("a", -10);
    v.add("b", -10);
    v.add("c", -10);
    v.add("ab", -2);
    int bc = v.add("bc", -1);
    SentencePieceBpeTokenizer t = v.build(PLAIN);
    assertThat(t.encode("abc")).containsExactly(a, bc);
  }

  @Test
  void mergesCascadeThroughIntermediatePieces() throws Exception {
    SmallVocab v = new SmallVocab(true);
    v.add("▁", -10);
    v.add("t", -10);
    v.add("h", -10);
    v.add("e", -10);
    v.add("▁t", -1);
    v.add("he", -2);
    int the = v.add("▁the", -3);
    SentencePieceBpeTokenizer t = v.build(SentencePieceNormalizer.LLAMA);
    // "▁the": "▁t" (-1) first, then "he" (-2), then "▁t"+"he" = "▁the" (-3).
    assertThat(t.encode("the")).containsExactly(the);
    assertThat(t.encode("the the")).containsExactly(the, the);
    assertThat(t.decode(new int[] {the, the})).isEqualTo("the the");
  }

  @Test
  void userDefinedPiecesAreMatchedWholeAndNeverMerged() throws Exception {
    SmallVocab v = new SmallVocab(true);
    int a = v.add("a", -10);
    int mask = v.add("<mask>", 0, TokenType.USER_DEFINED);
    v.add("a<", -1); // would swallow the "<" if <mask> were split into characters
    SentencePieceBpeTokenizer t = v.build(PLAIN);
    assertThat(t.encode("a<mask>a")).containsExactly(a, mask, a);
    assertThat(t.decode(t.encode("a<mask>a"))).isEqualTo("a<mask>a");
  }

  @Test
  void unusedPiecesAreSplitBackIntoTheirParts() throws Exception {
    SmallVocab v = new SmallVocab(true);
    int a = v.add("a", -10);
    int b = v.add("b", -10);
    v.add("c", -10);
    v.add("ab", -1, TokenType.UNUSED);
    int abc = v.add("abc", -2);
    SentencePieceBpeTokenizer t = v.build(PLAIN);
    // "ab" may serve as a stepping stone to "abc"...
    assertThat(t.encode("abc")).containsExactly(abc);
    // ...but is never emitted itself.
    assertThat(t.encode("ab")).containsExactly(a, b);
  }

  @Test
  void withoutByteTokensUnknownCharactersBecomeUnk() throws Exception {
    SmallVocab v = new SmallVocab(false);
    int a = v.add("a", -1);
    SentencePieceBpeTokenizer t = v.build(PLAIN);
    assertThat(t.encode("aéa")).containsExactly(a, 0, a);
    assertThat(t.decode(t.encode("aéa"))).isEqualTo("a \u2047 a");
  }

  @Test
  void byteFallbackCoversEveryUtf8ByteOfTheCharacter() throws Exception {
    SmallVocab v = new SmallVocab(true);
    int a = v.add("a", -1);
    SentencePieceBpeTokenizer t = v.build(PLAIN);
    // é is C3 A9; the byte tokens follow the three specials, so byte b is id b + 3.
    assertThat(t.encode("aé")).containsExactly(a, 0xC3 + 3, 0xA9 + 3);
    assertThat(t.decode(t.encode("aé"))).isEqualTo("aé");
  }

  @Test
  void normalizerOptions() {
    assertThat(SentencePieceNormalizer.LLAMA.normalize("a  b")).isEqualTo("▁a▁▁b");
    assertThat(SentencePieceNormalizer.LLAMA.normalize("")).isEmpty();
    assertThat(new SentencePieceNormalizer(true, true, false).normalize("  a   b  "))
        .isEqualTo("▁a▁b");
    assertThat(new SentencePieceNormalizer(false, false, true).normalize("ｆｕｌｌ ﬁ"))
        .isEqualTo("full▁fi");
  }

  @Test
  void modelProtoGivesTheSameTokenizerAsTheArrays() throws Exception {
    SmallVocab v = new SmallVocab(true);
    v.add("▁", -10);
    v.add("h", -10);
    v.add("i", -10);
    v.add("▁h", -1);
    v.add("▁hi", -2);
    SentencePieceBpeTokenizer fromArrays = v.build(SentencePieceNormalizer.LLAMA);
    SentencePieceBpeTokenizer fromProto = SentencePieceModelFile.parse(v.toModelProto(), "test");
    assertThat(fromProto.vocabSize()).isEqualTo(fromArrays.vocabSize());
    assertThat(fromProto.normalizer()).isEqualTo(SentencePieceNormalizer.LLAMA);
    for (String text : new String[] {"hi", "hi hi", " ih ", "héllo"}) {
      assertThat(fromProto.encode(text, true)).isEqualTo(fromArrays.encode(text, true));
    }
  }

  @Test
  void unigramModelsAreRejected() {
    byte[] model =
        new ProtoWriter()
            .message(1, new ProtoWriter().string(1, "<unk>").varint(3, 2))
            .message(2, new ProtoWriter().varint(3, 1))
            .toByteArray();
    assertThatThrownBy(() -> SentencePieceModelFile.parse(model, "uni.model"))
        .isInstanceOf(TokenizerFormatException.class)
        .hasMessageContaining("uni.model")
        .hasMessageContaining("not BPE");
  }

  @Test
  void ggufArraysAreValidated() {
    String[] tokens = {"<unk>", "<s>", "</s>", "a"};
    float[] scores = {0, 0, 0, 0};
    assertThatThrownBy(
            () ->
                SentencePieceBpeTokenizer.fromGguf(
                    tokens, new float[3], new int[] {2, 3, 3, 1}, 1, 2, 0, true))
        .isInstanceOf(TokenizerFormatException.class)
        .hasMessageContaining("differ in length");
    assertThatThrownBy(
            () ->
                SentencePieceBpeTokenizer.fromGguf(
                    tokens, scores, new int[] {2, 3, 3, 9}, 1, 2, 0, true))
        .isInstanceOf(TokenizerFormatException.class)
        .hasMessageContaining("token 3");
    assertThatThrownBy(
            () ->
                SentencePieceBpeTokenizer.fromGguf(
                    tokens, scores, new int[] {2, 3, 3, 1}, 1, 7, 0, true))
        .isInstanceOf(TokenizerFormatException.class)
        .hasMessageContaining("eos id 7");
    assertThatThrownBy(
            () ->
                SentencePieceBpeTokenizer.fromGguf(
                    new String[] {"<unk>", "<0xZZ>"}, null, new int[] {2, 6}, -1, -1, 0, true))
        .isInstanceOf(TokenizerFormatException.class)
        .hasMessageContaining("<0xZZ>");
  }

  @Test
  void ggufUnsetIdsMeanNone() throws Exception {
    SentencePieceBpeTokenizer t =
        SentencePieceBpeTokenizer.fromGguf(
            new String[] {"<unk>", "▁", "a", "▁a"}, null, null, -1, -1, 0, true);
    assertThat(t.bos()).isEqualTo(-1);
    assertThat(t.eos()).isEqualTo(-1);
    assertThat(t.encode("a", true)).containsExactly(3);
  }

  @Test
  void idsOutsideTheVocabularyAreRejected() throws Exception {
    SentencePieceBpeTokenizer t = new SmallVocab(true).build(PLAIN);
    assertThatThrownBy(() -> t.piece(t.vocabSize())).isInstanceOf(IndexOutOfBoundsException.class);
    assertThatThrownBy(() -> t.tokenBytes(-1)).isInstanceOf(IndexOutOfBoundsException.class);
    assertThatThrownBy(() -> t.decode(new int[] {5, 100_000}))
        .isInstanceOf(IndexOutOfBoundsException.class);
  }
}
