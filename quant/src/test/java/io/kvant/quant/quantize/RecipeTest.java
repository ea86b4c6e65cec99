package io.kvant.quant.quantize;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kvant.engine.model.Role;
import io.kvant.quant.encoding.WeightFormat;
import org.junit.jupiter.api.Test;

class RecipeTest {
  @Test
  void builtinsMatchTheirDescriptions() {
    Recipe mixed = Recipe.builtin("mixed");
    assertThat(mixed.spec(Role.Q).format()).isEqualTo(WeightFormat.INT4);
    assertThat(mixed.spec(Role.Q).groupSize()).isEqualTo(128);
    assertThat(mixed.spec(Role.DOWN).format()).isEqualTo(WeightFormat.INT8);
    assertThat(mixed.spec(Role.LM_HEAD).format()).isEqualTo(WeightFormat.INT8);
    assertThat(mixed.spec(Role.EMBEDDINGS).format()).isEqualTo(WeightFormat.FULL);
    assertThat(mixed.spec(Role.NORMS).format()).isEqualTo(WeightFormat.FULL);
    for (String n : Recipe.BUILTIN) {
      assertThat(Recipe.builtin(n).name()).isEqualTo(n);
    }
    for (String n : Recipe.CALIBRATED) {
      Recipe r = Recipe.builtin(n);
      assertThat(r.needsActivations()).as(n).isTrue();
      assertThat(r.spec(Role.LM_HEAD)).isEqualTo(QuantSpec.int8(Method.GPTQ));
      assertThat(r.spec(Role.EMBEDDINGS).format()).isEqualTo(WeightFormat.FULL);
    }
    QuantSpec w4 = Recipe.builtin("w4g32-asym-gptq").spec(Role.DOWN);
    assertThat(w4.label()).isEqualTo("int4-g32-asym-gptq");
    assertThat(Recipe.builtin("w4g128-asym-gptq").spec(Role.Q).groupSize()).isEqualTo(128);
    assertThat(Recipe.builtin("fp8-gptq").spec(Role.UP).label()).isEqualTo("fp8_e4m3-pc-gptq");
  }

  @Test
  void jsonRecipesExtendAndRoundTrip() {
    Recipe r =
        Recipe.parse(
            "{\"name\":\"x\",\"extends\":\"w4g128\",\"roles\":{\"down\":{\"type\":\"int8\",\"method\":\"mse\"},"
                + "\"q\":{\"type\":\"int4\",\"group_size\":64,\"symmetric\":false,\"method\":\"awq\"}}}");
    assertThat(r.spec(Role.DOWN).format()).isEqualTo(WeightFormat.INT8);
    assertThat(r.spec(Role.DOWN).method()).isEqualTo(Method.MSE);
    assertThat(r.spec(Role.Q).groupSize()).isEqualTo(64);
    assertThat(r.spec(Role.Q).symmetric()).isFalse();
    assertThat(r.needsActivations()).isTrue();
    assertThat(Recipe.parse(r.toJson().toString()).roles()).isEqualTo(r.roles());
  }

  @Test
  void badRecipesAreRejected() {
    assertThatThrownBy(() -> Recipe.builtin("w3")).hasMessageContaining("unknown recipe 'w3'");
    assertThatThrownBy(() -> Recipe.parse("{\"roles\":{\"qq\":{}}}"))
        .hasMessageContaining("unknown tensor role 'qq'");
    assertThatThrownBy(
            () -> Recipe.parse("{\"roles\":{\"q\":{\"type\":\"int4\",\"group_size\":33}}}"))
        .hasMessageContaining("role 'q'")
        .hasMessageContaining("even group size");
    assertThatThrownBy(() -> Recipe.parse("{\"roles\":{\"norms\":{\"type\":\"int8\"}}}"))
        .hasMessageContaining("norms");
    assertThatThrownBy(() -> Recipe.parse("[1]")).hasMessageContaining("object");
  }
}
