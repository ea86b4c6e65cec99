package io.kvant.engine.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Byte-level BPE on two small hand-built {@code tokenizer.json} files (test resources) that share
 * one vocabulary: ids 0-255 are the 256 byte characters in byte order (so a byte's id is its value:
 * space "Ġ" is 32, newline "Ċ" is 10), then one id per merge in rank order:
 *
 * <pre>
 * rank 0 Ġ t → 256 Ġt     rank 6 Ġ w → 262 Ġw        rank 12 h ell → 268 hell
 * rank 1 h e → 257 he     rank 7 Ġw or → 263 Ġwor    rank 13 hell o → 269 hello
 * rank 2 Ġt he → 258 Ġthe rank 8 l d → 264 ld        rank 14 Ċ Ċ → 270 ĊĊ
 * rank 3 i n → 259 in     rank 9 Ġwor ld → 265 Ġworld rank 15 1 2 → 271 12
 * rank 4 Ġ a → 260 Ġa     rank 10 l l → 266 ll      rank 16 3 4 → 272 34
 * rank 5 o r → 261 or     rank 11 e ll → 267 ell    273 Ġhello (no merge makes it)
 * </pre>
 *
 * <p>{@code gpt2-style-tokenizer.json}: ByteLevel pre-tokenizer with GPT-2's regex, merges as "a b"
 * strings, added special token 274 {@code <|endoftext|>}. {@code llama3-style-tokenizer.json}:
 * Split by Llama 3's regex then ByteLevel without regex, merges as pairs, {@code ignore_merges},
 * added tokens 274 {@code <|begin_of_text|>} (BOS via TemplateProcessing), 275 {@code
 * <|end_of_text|>}, 276 {@code <|eot_id|>} (special) and 277 {@code <tool>} (not special).
 */
class ByteLevelBpeTokenizerTest {
  private ByteLevelBpeTokenizer gpt2;
  private ByteLevelBpeTokenizer llama3;

  static Path resource(String name) throws Exception {
    return Path.of(ByteLevelBpeTokenizerTest.class.getResource(name).toURI());
  }

  @BeforeEach
  void load() throws Exception {
    gpt2 = HfTokenizerJson.read(resource("gpt2-style-tokenizer.json"));
    llama3 = HfTokenizerJson.read(resource("llama3-style-tokenizer.json"));
  }

  static Stream<String> corpus() {
    return Stream.of(
        "",
        "hello world",
        "in the beginning",
        "  two leading spaces and trailing  ",
        "tabs\tand\nnew\n\nlines\r\n",
        "café naïve über ñ",
        "中文 日本語 한국어",
        "🙂 👍🏽 👨‍👩‍👧‍👦",
        "numbers 12345 and 3.14159",
        "I'M HERE, you're there; it's 'quoted'");
  }

  @ParameterizedTest
  @MethodSource("corpus")
  void roundTrips(String text) {
    for (ByteLevelBpeTokenizer t : List.of(gpt2, llama3)) {
      assertThat(t.decode(t.encode(text))).isEqualTo(text);
      assertThat(t.decode(t.encode(text, true))).isEqualTo(text);
      IncrementalDecoder decoder = t.newDecoder();
      StringBuilder streamed = new StringBuilder();
      for (int id : t.encode(text, true)) {
        streamed.append(decoder.append(id));
      }
      assertThat(streamed.append(decoder.flush()).toString()).isEqualTo(text);
    }
  }

  @Test
  void specialIds() {
    assertThat(gpt2.vocabSize()).isEqualTo(275);
    assertThat(gpt2.bos()).isEqualTo(-1); // GPT-2's post-processor adds nothing
    assertThat(gpt2.eos()).isEqualTo(274);
    assertThat(llama3.vocabSize()).isEqualTo(278);
    assertThat(llama3.bos()).isEqualTo(274);
    assertThat(llama3.eos()).isEqualTo(275);
    assertThat(llama3.isControl(276)).isTrue();
    assertThat(llama3.isControl(277)).isFalse();
    assertThat(llama3.piece(32)).isEqualTo("Ġ");
    assertThat(llama3.piece(265)).isEqualTo("Ġworld");
    assertThat(llama3.tokenBytes(265)).isEqualTo(" world".getBytes(StandardCharsets.UTF_8));
  }

  @Test
  void lowerRankMergesFirstEvenWhenItBlocksALongerWord() {
    // "hello": "h e" (rank 1) comes before "l l" (rank 10) and "e ll" (rank 11), so "he" forms
    // and "ell"/"hell"/"hello" can never form: he, ll, o. " world": or(5), Ġw(6), Ġwor(7),
    // ld(8), Ġworld(9).
    assertThat(gpt2.encode("hello world")).containsExactly(257, 266, 'o', 265);
    assertThat(gpt2.encode("the")).containsExactly('t', 257); // "t he" is not a merge
    assertThat(gpt2.encode(" the")).containsExactly(258); // Ġt(0), he(1), Ġthe(2)
    assertThat(gpt2.encode(" hello")).containsExactly(' ', 257, 266, 'o');
  }

  @Test
  void ignoreMergesTakesWholeVocabularyWords() {
    // Llama 3 style: a pre-token that is a vocabulary entry is emitted whole.
    assertThat(llama3.encode("hello world")).containsExactly(269, 265);
    assertThat(llama3.encode(" hello")).containsExactly(273);
  }

  @Test
  void preTokenizerPatternsDiffer() {
    // GPT-2: "\s+(?!\S)" leaves one newline for each piece, so the two newlines never meet.
    assertThat(gpt2.encode("a\n\nb")).containsExactly('a', '\n', '\n', 'b');
    // Llama 3: "\s*[\r\n]+" keeps the run together, and "Ċ Ċ" merges.
    assertThat(llama3.encode("a\n\nb")).containsExactly('a', 270, 'b');
    // GPT-2 keeps a digit run whole: 12, 34, 5. Llama 3 cuts it in threes: 123 | 45.
    assertThat(gpt2.encode("12345")).containsExactly(271, 272, '5');
    assertThat(llama3.encode("12345")).containsExactly(271, '3', '4', '5');
  }

  @Test
  void addedTokensAreMatchedBeforeBpe() {
    assertThat(gpt2.encode("in the<|endoftext|>x")).containsExactly(259, 258, 274, 'x');
    assertThat(llama3.encode("hi", true)).containsExactly(274, 'h', 'i');
    assertThat(llama3.encode("<tool>x<|eot_id|>")).containsExactly(277, 'x', 276);
    // Special tokens decode to nothing, plain added tokens to their content.
    assertThat(llama3.decode(new int[] {274, 277, 'x', 276})).isEqualTo("<tool>x");
  }

  @Test
  void nonAsciiTextIsEncodedAsUtf8ByteCharacters() {
    // "é" is C3 A9; with no merges these are ids 0xC3 and 0xA9.
    assertThat(gpt2.encode("é")).containsExactly(0xC3, 0xA9);
    IncrementalDecoder decoder = gpt2.newDecoder();
    int[] emoji = gpt2.encode("🙂");
    assertThat(emoji).containsExactly(0xF0, 0x9F, 0x99, 0x82);
    assertThat(decoder.append(emoji[0])).isEmpty();
    assertThat(decoder.append(emoji[1])).isEmpty();
    assertThat(decoder.append(emoji[2])).isEmpty();
    assertThat(decoder.append(emoji[3])).isEqualTo("🙂");
  }

  @Test
  void ggufArraysGiveTheSameTokenizer() throws Exception {
    JsonNode json = new ObjectMapper().readTree(resource("llama3-style-tokenizer.json").toFile());
    String[] tokens = new String[278];
    int[] types = new int[278];
    json.get("model")
        .get("vocab")
        .properties()
        .forEach(e -> tokens[e.getValue().intValue()] = e.getKey());
    java.util.Arrays.fill(types, 1);
    for (JsonNode added : json.get("added_tokens")) {
      tokens[added.get("id").intValue()] = added.get("content").asText();
      types[added.get("id").intValue()] = added.get("special").asBoolean() ? 3 : 4;
    }
    List<String> merges = new ArrayList<>();
    for (JsonNode pair : json.get("model").get("merges")) {
      merges.add(pair.get(0).asText() + " " + pair.get(1).asText());
    }
    ByteLevelBpeTokenizer fromGguf =
        ByteLevelBpeTokenizer.fromGguf(
            tokens, types, merges.toArray(String[]::new), 274, 275, "llama-bpe");
    corpus()
        .forEach(
            text -> assertThat(fromGguf.encode(text, true)).isEqualTo(llama3.encode(text, true)));
    assertThat(fromGguf.encode("<tool>x<|eot_id|>")).containsExactly(277, 'x', 276);
  }

  @Test
  void splitBehaviours() {
    java.util.regex.Pattern dash = PreTokenizer.compile("-");
    assertThat(split(dash, PreTokenizer.Behavior.ISOLATED, false, "a-b--c"))
        .containsExactly("a", "-", "b", "-", "-", "c");
    assertThat(split(dash, PreTokenizer.Behavior.REMOVED, false, "a-b--c"))
        .containsExactly("a", "b", "c");
    assertThat(split(dash, PreTokenizer.Behavior.MERGED_WITH_PREVIOUS, false, "a-b--c"))
        .containsExactly("a-", "b-", "-", "c");
    assertThat(split(dash, PreTokenizer.Behavior.MERGED_WITH_NEXT, false, "a-b--c"))
        .containsExactly("a", "-b", "-", "-c");
    // Inverted: the matches are the pieces, the text between them the delimiters (removed here).
    assertThat(split(PreTokenizer.compile("[a-z]+"), PreTokenizer.Behavior.REMOVED, true, "ab, cd"))
        .containsExactly("ab", "cd");
  }

  private static List<String> split(
      java.util.regex.Pattern pattern, PreTokenizer.Behavior behavior, boolean invert, String s) {
    List<String> out = new ArrayList<>();
    new PreTokenizer.RegexSplit(pattern, behavior, invert).apply(s, out);
    return out;
  }

  @Test
  void malformedOrUnsupportedFilesAreRejected() throws Exception {
    String valid = Files.readString(resource("gpt2-style-tokenizer.json"));
    Map<String, String> broken =
        Map.of(
            "{not json",
            "not valid JSON",
            "[]",
            "not a JSON object",
            "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}",
            "WordPiece",
            valid.replace("\"Ġ t\"", "\"Ġ zz\""),
            "merge 0",
            valid.replace(
                "\"type\": \"ByteLevel\",\n  \"add_prefix_space\": false",
                "\"type\": \"Metaspace\",\n  \"add_prefix_space\": false"),
            "Metaspace",
            valid.replace("\"Ġt\": 256", "\"Ġt\": 99999999"),
            "invalid id",
            valid.replace("\"Ġt\": 256", "\"Ġt\": 257"),
            "used by both",
            valid.replace("\"Ġ t\"", "\"Ġ t x\""),
            "not two tokens");
    for (Map.Entry<String, String> e : broken.entrySet()) {
      assertThat(e.getKey()).isNotEqualTo(valid);
      assertThatThrownBy(
              () -> HfTokenizerJson.parse(e.getKey().getBytes(StandardCharsets.UTF_8), "t.json"))
          .as(e.getValue())
          .isInstanceOf(TokenizerFormatException.class)
          .hasMessageStartingWith("t.json: ")
          .hasMessageContaining(e.getValue());
    }
  }

  @Test
  void badSplitRegexIsAFormatError() throws Exception {
    String valid = Files.readString(resource("llama3-style-tokenizer.json"));
    String broken = valid.replace("\"Regex\": \"(?i:", "\"Regex\": \"((?i:");
    assertThatThrownBy(() -> HfTokenizerJson.parse(broken.getBytes(StandardCharsets.UTF_8), "x"))
        .isInstanceOf(TokenizerFormatException.class)
        .hasMessageContaining("regex");
  }

  @Test
  void truncatedJsonIsRejected() throws Exception {
    byte[] file = Files.readAllBytes(resource("llama3-style-tokenizer.json"));
    for (int cut = 0; cut < file.length - 2; cut += 97) {
      byte[] truncated = java.util.Arrays.copyOf(file, cut);
      assertThatThrownBy(() -> HfTokenizerJson.parse(truncated, "t.json"))
          .isInstanceOf(TokenizerFormatException.class);
    }
  }
}
