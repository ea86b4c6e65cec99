package io.kvant.engine.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The bundled model's weights by name and back, object for object. */
class WeightLayoutTest {
  static Model model;

  @BeforeAll
  static void load() throws Exception {
    model = ModelLoader.load(Path.of("../models/kvant-kjv-7m.gguf"), Optional.empty());
  }

  @AfterAll
  static void close() throws Exception {
    model.close();
  }

  @Test
  void namedWeightsAssembleIntoTheSameObjects() {
    WeightLayout layout = WeightLayout.of(model);
    Map<String, Weight> named = layout.named(model.weights());
    assertThat(named.keySet()).containsExactlyElementsOf(layout.all().keySet());
    for (var e : named.entrySet()) {
      WeightLayout.Slot slot = layout.slot(e.getKey());
      switch (e.getValue()) {
        case Weight.Matrix m -> {
          assertThat(slot.matrix()).as(e.getKey()).isTrue();
          assertThat(new long[] {m.tensor().rows(), m.tensor().cols()}).isEqualTo(slot.shape());
        }
        case Weight.Vector v -> {
          assertThat(slot.matrix()).as(e.getKey()).isFalse();
          assertThat((long) v.values().length).isEqualTo(slot.shape()[0]);
        }
      }
    }
    ModelWeights back = layout.assemble(named);
    assertThat(back.embedding()).isSameAs(model.weights().embedding());
    assertThat(back.output()).isSameAs(model.weights().output());
    assertThat(back.layers().get(1).wDown()).isSameAs(model.weights().layers().get(1).wDown());
    assertThat(back.layers().get(0).attnNorm())
        .isSameAs(model.weights().layers().get(0).attnNorm());
    // Equality is identity of the held object: the same weights named twice are equal.
    assertThat(layout.named(back)).isEqualTo(named);
  }

  @Test
  void aMissingOrWrongKindOfWeightIsRefusedNamingIt() {
    WeightLayout layout = WeightLayout.of(model);
    Map<String, Weight> named = new LinkedHashMap<>(layout.named(model.weights()));
    String q = TensorNames.matrix(0, Role.Q);
    String norm = TensorNames.attnNorm(0);
    Map<String, Weight> swapped = new LinkedHashMap<>(named);
    swapped.put(q, named.get(norm));
    assertThatThrownBy(() -> layout.assemble(swapped)).hasMessageContaining(q + " is a vector");
    named.remove(norm);
    assertThatThrownBy(() -> layout.assemble(named)).hasMessageContaining(norm + " is missing");
  }
}
