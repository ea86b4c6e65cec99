package io.kvant.engine.model;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kvant.engine.forward.Transformer;
import io.kvant.engine.generate.GenerationResult;
import io.kvant.engine.generate.Generator;
import io.kvant.engine.sample.SamplingParams;
import io.kvant.engine.tensor.ComputePool;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.stream.StreamSupport;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The model kvant trained itself ({@code models/kvant-kjv-7m.gguf}, see models/README.md): the Java
 * engine reproduces the training script's golden greedy ids (computed by an independent float64
 * forward pass over the exported file), and the Java tokenizer reproduces real SentencePiece's
 * encodings of the same strings.
 */
class BundledModelGoldenTest {
  static final Path DIR = Path.of("../models");
  static JsonNode golden;
  static Model model;

  @BeforeAll
  static void load() throws Exception {
    golden = new ObjectMapper().readTree(DIR.resolve("kvant-kjv-7m.golden.json").toFile());
    model = ModelLoader.load(DIR.resolve(golden.get("model").asText()), Optional.empty());
  }

  @AfterAll
  static void close() throws Exception {
    model.close();
  }

  @Test
  void fileIsTheOneTheModelCardDescribes() throws Exception {
    MessageDigest sha = MessageDigest.getInstance("SHA-256");
    try (InputStream in = new DigestInputStream(Files.newInputStream(model.source()), sha)) {
      in.transferTo(java.io.OutputStream.nullOutputStream());
    }
    assertThat(HexFormat.of().formatHex(sha.digest())).isEqualTo(golden.get("sha256").asText());
    assertThat(model.config().dim()).isEqualTo(256);
    assertThat(model.config().layers()).isEqualTo(8);
    assertThat(model.tokenizer().vocabSize()).isEqualTo(4096);
  }

  @Test
  void greedyGenerationReproducesTheGoldenIdsForEveryPrompt() {
    try (ComputePool pool = new ComputePool(2)) {
      Generator g =
          new Generator(new Transformer(model.config(), model.weights(), pool), model.tokenizer());
      for (JsonNode p : golden.get("prompts")) {
        int[] prompt = ints(p.get("prompt_ids"));
        int[] expected = ints(p.get("generated_ids"));
        GenerationResult r =
            g.generate(prompt, expected.length, SamplingParams.GREEDY, List.of(), s -> {});
        assertThat(r.tokens())
            .as("prompt '%s'", p.get("prompt").asText())
            .containsExactly(expected);
        // A continuation keeps its leading space ("In the beginning" + " of the reign"), so the
        // prompt plus our text must equal the golden full text (SentencePiece's decode of the
        // continuation alone drops that space, as it does at the start of any text).
        String prompt0 = p.get("prompt").asText();
        String full = prompt0.isEmpty() ? r.text() : prompt0 + r.text();
        assertThat(full).isEqualTo(p.get("full_text").asText());
        if (!p.get("prompt").asText().isEmpty()) {
          assertThat(model.tokenizer().encode(p.get("prompt").asText(), true))
              .as("prompt ids of '%s'", p.get("prompt").asText())
              .containsExactly(prompt);
        }
      }
    }
  }

  @Test
  void tokenizerMatchesSentencePieceOnEveryRecordedString() {
    for (JsonNode c : golden.get("tokenizer").get("cases")) {
      String text = c.get("text").asText();
      assertThat(model.tokenizer().encode(text, false))
          .as("'%s'", text)
          .containsExactly(ints(c.get("ids")));
      assertThat(model.tokenizer().decode(ints(c.get("ids")))).isEqualTo(text);
    }
  }

  static int[] ints(JsonNode array) {
    return StreamSupport.stream(array.spliterator(), false).mapToInt(JsonNode::asInt).toArray();
  }
}
