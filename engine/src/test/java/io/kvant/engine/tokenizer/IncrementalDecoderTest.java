package io.kvant.engine.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Streaming decode over byte-fallback tokens (byte b is id b + 3 in {@link SmallVocab}). */
class IncrementalDecoderTest {
  private SentencePieceBpeTokenizer tokenizer;
  private int hello;

  @BeforeEach
  void setUp() throws Exception {
    SmallVocab v = new SmallVocab(true);
    hello = v.add("▁hello", -1);
    tokenizer = v.build(SentencePieceNormalizer.LLAMA);
  }

  private static int byteToken(int b) {
    return b + 3;
  }

  private static int[] byteTokens(String text) {
    byte[] utf8 = text.getBytes(StandardCharsets.UTF_8);
    int[] ids = new int[utf8.length];
    for (int i = 0; i < utf8.length; i++) {
      ids[i] = byteToken(utf8[i] & 0xFF);
    }
    return ids;
  }

  @Test
  void fourByteEmojiAppearsOnlyWithItsLastByte() {
    IncrementalDecoder decoder = tokenizer.newDecoder();
    int[] ids = byteTokens("🙂"); // F0 9F 99 82
    assertThat(ids).hasSize(4);
    assertThat(decoder.append(ids[0])).isEmpty();
    assertThat(decoder.append(ids[1])).isEmpty();
    assertThat(decoder.append(ids[2])).isEmpty();
    assertThat(decoder.append(ids[3])).isEqualTo("🙂");
    assertThat(decoder.flush()).isEmpty();
  }

  @Test
  void completeTextIsNotHeldBack() {
    IncrementalDecoder decoder = tokenizer.newDecoder(false);
    assertThat(decoder.append(hello)).isEqualTo(" hello");
    int[] e = byteTokens("é");
    assertThat(decoder.append(e[0])).isEmpty();
    assertThat(decoder.append(e[1])).isEqualTo("é");
    assertThat(decoder.append(byteToken('!'))).isEqualTo("!");
  }

  @Test
  void appendsPlusFlushEqualDecode() {
    int[] ids = concat(new int[] {1, hello}, byteTokens(" 👍🏽 中 x"), new int[] {2});
    IncrementalDecoder decoder = tokenizer.newDecoder();
    StringBuilder streamed = new StringBuilder();
    for (int id : ids) {
      streamed.append(decoder.append(id));
    }
    streamed.append(decoder.flush());
    assertThat(streamed.toString()).isEqualTo(tokenizer.decode(ids)).isEqualTo("hello 👍🏽 中 x");
  }

  @Test
  void invalidBytesBecomeReplacementCharacters() {
    // A lone continuation byte is invalid at once.
    assertThat(tokenizer.decode(new int[] {byteToken(0x80), byteToken('a')})).isEqualTo("\uFFFDa");
    // A lead byte followed by a non-continuation byte.
    assertThat(tokenizer.decode(new int[] {byteToken(0xE2), byteToken('a')})).isEqualTo("\uFFFDa");
    // A sequence still incomplete at the end is released by flush.
    IncrementalDecoder decoder = tokenizer.newDecoder();
    assertThat(decoder.append(byteToken(0xE2))).isEmpty();
    assertThat(decoder.append(byteToken(0x82))).isEmpty();
    assertThat(decoder.flush()).isEqualTo("\uFFFD");
    assertThat(decoder.flush()).isEmpty();
  }

  @Test
  void controlTokensProduceNothingAndBosRestartsTheDummyPrefix() {
    IncrementalDecoder decoder = tokenizer.newDecoder();
    assertThat(decoder.append(1)).isEmpty();
    assertThat(decoder.append(hello)).isEqualTo("hello");
    assertThat(decoder.append(hello)).isEqualTo(" hello");
    assertThat(decoder.append(2)).isEmpty();
    assertThat(decoder.append(1)).isEmpty();
    assertThat(decoder.append(hello)).isEqualTo("hello");
  }

  @Test
  void byteTokenSpaceIsNeverTakenForTheDummyPrefix() {
    // Only word pieces carry the dummy prefix; a literal <0x20> is text.
    assertThat(tokenizer.decode(new int[] {1, byteToken(' '), hello})).isEqualTo("  hello");
  }

  @Test
  void completePrefixLengthHoldsOnlyPossiblyIncompleteTails() {
    assertThat(IncrementalDecoder.completePrefixLength(bytes())).isZero();
    assertThat(IncrementalDecoder.completePrefixLength(bytes('a', 'b'))).isEqualTo(2);
    assertThat(IncrementalDecoder.completePrefixLength(bytes('a', 0xF0, 0x9F))).isEqualTo(1);
    assertThat(IncrementalDecoder.completePrefixLength(bytes(0xF0, 0x9F, 0x99, 0x82))).isEqualTo(4);
    assertThat(IncrementalDecoder.completePrefixLength(bytes('a', 0xC3))).isEqualTo(1);
    // A continuation byte with no lead byte in reach cannot be completed: release it.
    assertThat(IncrementalDecoder.completePrefixLength(bytes(0x80, 0x80, 0x80, 0x80))).isEqualTo(4);
    // 0xFF is never valid: nothing to wait for.
    assertThat(IncrementalDecoder.completePrefixLength(bytes('a', 0xFF))).isEqualTo(2);
  }

  private static byte[] bytes(int... values) {
    byte[] b = new byte[values.length];
    for (int i = 0; i < values.length; i++) {
      b[i] = (byte) values[i];
    }
    return b;
  }

  private static int[] concat(int[]... parts) {
    return java.util.Arrays.stream(parts).flatMapToInt(java.util.Arrays::stream).toArray();
  }
}
