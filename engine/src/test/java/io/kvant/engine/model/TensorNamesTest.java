package io.kvant.engine.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

/**
 * Tensor names and their roles go both ways: every name the engine spells maps back to its role.
 */
class TensorNamesTest {
  @Test
  void everyNameMapsBackToItsRole() {
    for (Role r : new Role[] {Role.Q, Role.K, Role.V, Role.O, Role.GATE, Role.UP, Role.DOWN}) {
      assertThat(TensorNames.roleOf(TensorNames.matrix(11, r))).isEqualTo(r);
    }
    assertThat(TensorNames.roleOf(TensorNames.EMBEDDING)).isEqualTo(Role.EMBEDDINGS);
    assertThat(TensorNames.roleOf(TensorNames.OUTPUT)).isEqualTo(Role.LM_HEAD);
    assertThat(TensorNames.roleOf(TensorNames.OUTPUT_NORM)).isEqualTo(Role.NORMS);
    assertThat(TensorNames.roleOf(TensorNames.attnNorm(3))).isEqualTo(Role.NORMS);
    assertThat(TensorNames.roleOf(TensorNames.ffnNorm(3))).isEqualTo(Role.NORMS);
    assertThat(TensorNames.roleOf(TensorNames.bias(0, Role.K))).isEqualTo(Role.NORMS);
    assertThat(TensorNames.matrix(2, Role.O)).isEqualTo("blk.2.attn_output.weight");
  }

  @Test
  void aNameThatIsNotKvantsIsRefusedNamingIt() {
    for (String bad :
        new String[] {
          "model.layers.0.self_attn.q_proj.weight", "blk.x", "blk.0.attn_z.weight", ""
        }) {
      assertThatThrownBy(() -> TensorNames.roleOf(bad)).hasMessageContaining("'" + bad + "'");
    }
  }

  @Test
  void everyNameHasItsHuggingFaceSpelling() {
    assertThat(TensorNames.huggingFace(TensorNames.EMBEDDING))
        .isEqualTo("model.embed_tokens.weight");
    assertThat(TensorNames.huggingFace(TensorNames.OUTPUT)).isEqualTo("lm_head.weight");
    assertThat(TensorNames.huggingFace(TensorNames.OUTPUT_NORM)).isEqualTo("model.norm.weight");
    assertThat(TensorNames.huggingFace(TensorNames.matrix(12, Role.O)))
        .isEqualTo("model.layers.12.self_attn.o_proj.weight");
    assertThat(TensorNames.huggingFace(TensorNames.matrix(0, Role.DOWN)))
        .isEqualTo("model.layers.0.mlp.down_proj.weight");
    assertThat(TensorNames.huggingFace(TensorNames.bias(1, Role.V)))
        .isEqualTo("model.layers.1.self_attn.v_proj.bias");
    assertThat(TensorNames.huggingFace(TensorNames.attnNorm(2)))
        .isEqualTo("model.layers.2.input_layernorm.weight");
    assertThat(TensorNames.huggingFace(TensorNames.ffnNorm(2)))
        .isEqualTo("model.layers.2.post_attention_layernorm.weight");
    for (String bad : new String[] {"blk.x.attn_q.weight", "blk.0.attn_z.weight", "q"}) {
      assertThatThrownBy(() -> TensorNames.huggingFace(bad)).hasMessageContaining("'" + bad + "'");
    }
  }

  @Test
  void huggingFaceNamesMapBackAndOthersDoNot() {
    java.util.List<String> names = new java.util.ArrayList<>();
    names.addAll(
        java.util.List.of(TensorNames.EMBEDDING, TensorNames.OUTPUT, TensorNames.OUTPUT_NORM));
    for (Role r : new Role[] {Role.Q, Role.K, Role.V, Role.O, Role.GATE, Role.UP, Role.DOWN}) {
      names.add(TensorNames.matrix(17, r));
    }
    names.addAll(
        java.util.List.of(
            TensorNames.attnNorm(3), TensorNames.ffnNorm(3), TensorNames.bias(4, Role.Q)));
    for (String n : names) {
      assertThat(TensorNames.isName(n)).as(n).isTrue();
      assertThat(TensorNames.fromHuggingFace(TensorNames.huggingFace(n))).as(n).contains(n);
    }
    for (String bad :
        new String[] {
          "model.layers.x.self_attn.q_proj.weight",
          "model.layers.0.mlp.q_proj.weight",
          "model.layers.0.self_attn.o_proj.bias",
          "model.layers.0.self_attn.q_proj",
          "blk.0.attn_q.weight",
          ""
        }) {
      assertThat(TensorNames.fromHuggingFace(bad)).as(bad).isEmpty();
    }
    for (String bad : new String[] {"blk.x.attn_q.weight", "blk..attn_q.weight", "blk.0.q", ""}) {
      assertThat(TensorNames.isName(bad)).as(bad).isFalse();
    }
  }
}
