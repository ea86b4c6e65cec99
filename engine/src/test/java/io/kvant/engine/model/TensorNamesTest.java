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
}
