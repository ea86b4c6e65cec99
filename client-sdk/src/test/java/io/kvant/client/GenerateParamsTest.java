package io.kvant.client;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kvant.api.v1.GenerateRequest;
import io.kvant.api.v1.SamplingParams;
import java.util.Collections;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.Test;

class GenerateParamsTest {
  private static GenerateParams.Builder base() {
    return GenerateParams.builder().prompt("p");
  }

  private static void rejects(UnaryOperator<GenerateParams.Builder> change, String message) {
    assertThatThrownBy(() -> change.apply(base()).build())
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage(message);
  }

  @Test
  void everyRangeIsCheckedWithTheFieldNamed() {
    rejects(b -> b.topP(1.5f), "top_p: must be in [0, 1], got 1.5");
    rejects(b -> b.topP(Float.NaN), "top_p: must be in [0, 1], got NaN");
    rejects(b -> b.maxTokens(-1), "max_tokens: must be in [0, 1048576], got -1");
    rejects(b -> b.maxTokens(1_048_577), "max_tokens: must be in [0, 1048576], got 1048577");
    rejects(b -> b.temperature(100.5f), "temperature: must be in [0, 100], got 100.5");
    rejects(b -> b.temperature(-0.1f), "temperature: must be in [0, 100], got -0.1");
    rejects(b -> b.topK(-1), "top_k: must be in [0, vocab_size], got -1");
    rejects(b -> b.minP(2), "min_p: must be in [0, 1], got 2.0");
    rejects(b -> b.repetitionPenalty(11), "repetition_penalty: must be in [0, 10], got 11.0");
    rejects(b -> b.presencePenalty(-2.5f), "presence_penalty: must be in [-2, 2], got -2.5");
    rejects(b -> b.frequencyPenalty(3), "frequency_penalty: must be in [-2, 2], got 3.0");
    rejects(b -> b.logprobs(21), "logprobs: must be in [0, 20], got 21");
    rejects(b -> b.priority(-1001), "priority: must be in [-1000, 1000], got -1001");
    rejects(
        b -> b.stop(Collections.nCopies(17, "x")), "stop: must have at most 16 entries, got 17");
    rejects(b -> b.stop("ok", ""), "stop[1]: must be 1 to 256 bytes of UTF-8, got 0");
    rejects(b -> b.stop("é".repeat(129)), "stop[0]: must be 1 to 256 bytes of UTF-8, got 258");
    rejects(
        b -> b.requestId("x".repeat(129)),
        "request_id: must be at most 128 printable ASCII characters, got 129 characters");
    rejects(
        b -> b.requestId("a\nb"),
        "request_id: must be printable ASCII, got character 0xa at index 1");
  }

  @Test
  void thePromptMustBeExactlyOneNonEmptyThing() {
    assertThatThrownBy(() -> GenerateParams.builder().build())
        .hasMessage("prompt: must not be empty");
    assertThatThrownBy(() -> GenerateParams.builder().prompt("").build())
        .hasMessage("prompt: must not be empty");
    assertThatThrownBy(() -> GenerateParams.builder().promptTokenIds().build())
        .hasMessage("prompt: must not be empty");
    assertThatThrownBy(() -> GenerateParams.builder().prompt("a").promptTokenIds(1).build())
        .hasMessage("prompt: set either text or token ids, not both");
    assertThatThrownBy(() -> GenerateParams.builder().promptTokenIds(5, -2).build())
        .hasMessage("prompt.token_ids: must be in [0, vocab_size), got -2");
  }

  @Test
  void edgesOfTheRangesAreAccepted() {
    GenerateParams p =
        base()
            .maxTokens(1 << 20)
            .temperature(100)
            .topP(1)
            .minP(0)
            .repetitionPenalty(10)
            .presencePenalty(-2)
            .frequencyPenalty(2)
            .logprobs(20)
            .priority(-1000)
            .seed(-1) // uint64 max
            .stop(Collections.nCopies(16, "s".repeat(256)))
            .requestId("~".repeat(128))
            .build();
    assertThat(p.toProto().getSampling().getSeed()).isEqualTo(-1L);
  }

  @Test
  void mapsToTheProtoFieldForField() {
    GenerateParams p =
        GenerateParams.builder()
            .model("llama")
            .promptTokenIds(1, 2, 3)
            .maxTokens(7)
            .temperature(0.5f)
            .topK(40)
            .topP(0.9f)
            .minP(0.05f)
            .repetitionPenalty(1.1f)
            .presencePenalty(0.2f)
            .frequencyPenalty(-0.3f)
            .seed(42)
            .stop("\n", "END")
            .returnTokenIds(true)
            .logprobs(3)
            .priority(-5)
            .requestId("abc")
            .build();
    GenerateRequest expected =
        GenerateRequest.newBuilder()
            .setModel("llama")
            .setTokenIds(io.kvant.api.v1.TokenIds.newBuilder().addIds(1).addIds(2).addIds(3))
            .setMaxTokens(7)
            .setSampling(
                SamplingParams.newBuilder()
                    .setTemperature(0.5f)
                    .setTopK(40)
                    .setTopP(0.9f)
                    .setMinP(0.05f)
                    .setRepetitionPenalty(1.1f)
                    .setPresencePenalty(0.2f)
                    .setFrequencyPenalty(-0.3f)
                    .setSeed(42))
            .addStop("\n")
            .addStop("END")
            .setReturnTokenIds(true)
            .setLogprobs(3)
            .setPriority(-5)
            .setRequestId("abc")
            .build();
    assertThat(p.toProto()).isEqualTo(expected);
    assertThat(p.requestId()).isEqualTo("abc");
  }

  @Test
  void defaultsAreTheProtoZeroValuesAndGreedyHasNoSamplingMessage() {
    GenerateRequest r = base().build().toProto();
    assertThat(r).isEqualTo(GenerateRequest.newBuilder().setText("p").build());
    assertThat(r.hasSampling()).isFalse();
  }
}
