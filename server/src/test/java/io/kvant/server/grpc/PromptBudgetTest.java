package io.kvant.server.grpc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kvant.api.v1.GenerateRequest;
import io.kvant.engine.model.Model;
import io.kvant.engine.model.ModelLoader;
import io.kvant.engine.tokenizer.IncrementalDecoder;
import io.kvant.engine.tokenizer.Tokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Issue 17, item 3: a prompt too long for the context window is refused on its byte count, and the
 * tokenizer is never called for it (before, every refused prompt was tokenized first).
 */
class PromptBudgetTest {
  static Model model;

  @BeforeAll
  static void load() throws Exception {
    model = ModelLoader.load(stories(), Optional.empty());
  }

  @AfterAll
  static void close() throws Exception {
    model.close();
  }

  static Path stories() {
    for (Path d = Path.of("").toAbsolutePath(); d != null; d = d.getParent()) {
      Path c = d.resolve("../shared/models").normalize();
      if (Files.isDirectory(c)) {
        return c.resolve("stories260K/stories260K.gguf");
      }
    }
    throw new IllegalStateException("../shared/models not found");
  }

  /** Counts the texts it is asked to encode. */
  record Counting(Tokenizer inner, AtomicInteger encodes) implements Tokenizer {
    @Override
    public int[] encode(String text, boolean addBos) {
      encodes.incrementAndGet();
      return inner.encode(text, addBos);
    }

    @Override
    public byte[] tokenBytes(int id) {
      return inner.tokenBytes(id);
    }

    @Override
    public String piece(int id) {
      return inner.piece(id);
    }

    @Override
    public int vocabSize() {
      return inner.vocabSize();
    }

    @Override
    public int bos() {
      return inner.bos();
    }

    @Override
    public int eos() {
      return inner.eos();
    }

    @Override
    public boolean isControl(int id) {
      return inner.isControl(id);
    }

    @Override
    public IncrementalDecoder newDecoder(boolean atSequenceStart) {
      return inner.newDecoder(atSequenceStart);
    }
  }

  private static RequestValidator validator(Tokenizer t) {
    var c = model.config();
    return new RequestValidator(
        t,
        c.vocabSize(),
        c.contextLength(),
        16,
        1 << 20,
        PromptBudget.longestTokenBytes(t),
        () -> 1L);
  }

  @Test
  void aPromptThatCannotFitIsRefusedWithoutTokenizing() {
    AtomicInteger encodes = new AtomicInteger();
    Counting t = new Counting(model.tokenizer(), encodes);
    int longest = PromptBudget.longestTokenBytes(t);
    int context = model.config().contextLength();
    // The bound is real: no token is longer than `longest` bytes.
    for (int id = 0; id < t.vocabSize(); id++) {
      assertThat(t.tokenBytes(id).length).isLessThanOrEqualTo(longest);
    }
    String huge = "Once upon a time ".repeat((1 << 20) / 17);
    assertThatThrownBy(
            () -> validator(t).validate(GenerateRequest.newBuilder().setText(huge).build(), "r1"))
        .isInstanceOf(InvalidFieldException.class)
        .hasMessageStartingWith("prompt.text: ")
        .hasMessageContaining("cannot fit the context window of " + context + " tokens");
    assertThat(encodes).hasValue(0);
  }

  @Test
  void aPromptAtTheBoundIsStillTokenizedAndJudgedByTokens() {
    AtomicInteger encodes = new AtomicInteger();
    Counting t = new Counting(model.tokenizer(), encodes);
    int bound = model.config().contextLength() * PromptBudget.longestTokenBytes(t);
    // Within the byte bound, but more tokens than the context: refused after tokenizing.
    String text = "a b ".repeat(bound / 4);
    assertThatThrownBy(
            () -> validator(t).validate(GenerateRequest.newBuilder().setText(text).build(), "r2"))
        .isInstanceOf(InvalidFieldException.class)
        .hasMessageStartingWith("prompt: ");
    assertThat(encodes).hasValue(1);
    var ok =
        validator(t)
            .validate(GenerateRequest.newBuilder().setText("Once upon a time").build(), "r3");
    assertThat(ok.promptTokens()).isNotEmpty();
  }

  @Test
  void cheapFieldsAreCheckedBeforeTheprompt() {
    AtomicInteger encodes = new AtomicInteger();
    Counting t = new Counting(model.tokenizer(), encodes);
    assertThatThrownBy(
            () ->
                validator(t)
                    .validate(
                        GenerateRequest.newBuilder().setText("Once").setLogprobs(99).build(), "r4"))
        .hasMessageStartingWith("logprobs: ");
    assertThat(encodes).hasValue(0);
  }
}
