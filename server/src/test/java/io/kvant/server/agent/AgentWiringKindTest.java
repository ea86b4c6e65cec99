package io.kvant.server.agent;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.api.v1.ModelEvent;
import io.kvant.reload.Step;
import java.util.EnumSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** Each agent step is reported as the API's event kind of the same meaning. */
class AgentWiringKindTest {
  @Test
  void everyStepHasItsOwnKind() {
    Set<ModelEvent.Kind> kinds = EnumSet.noneOf(ModelEvent.Kind.class);
    for (Step s : Step.values()) {
      assertThat(AgentWiring.kind(s).name()).isEqualTo(s.name());
      kinds.add(AgentWiring.kind(s));
    }
    assertThat(kinds).hasSize(Step.values().length);
  }
}
