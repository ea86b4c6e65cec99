package io.kvant.reload;

import io.kvant.engine.model.LayerWeights;
import io.kvant.engine.model.LlamaConfig;
import io.kvant.engine.model.ModelWeights;
import io.kvant.engine.model.Role;
import io.kvant.engine.model.TensorNames;
import io.kvant.engine.tensor.Tensor;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The named tensors of a Llama model (kvant's GGUF-style names, spelled by the engine's {@link
 * TensorNames}) and their expected shapes, and the two-way mapping between a {@link ModelWeights}
 * and a name-to-value map. A value is a {@link Tensor} for a matrix and a {@code float[]} for a
 * norm or bias vector.
 *
 * <p>{@link #assemble} puts the given objects in place as they are, so a version built from its
 * parent's map with a few entries replaced shares every other object with the parent
 * (copy-on-write).
 */
final class WeightSlots {
  static final String EMBEDDING = TensorNames.EMBEDDING;
  static final String OUTPUT = TensorNames.OUTPUT;
  static final String OUTPUT_NORM = TensorNames.OUTPUT_NORM;

  /** One named slot: its shape ([rows, cols] or [n]) and whether it is a matrix. */
  record Slot(String name, long[] shape, boolean optional) {
    boolean matrix() {
      return shape.length == 2;
    }
  }

  private final LlamaConfig config;
  private final boolean tied;
  private final boolean biases;
  private final Map<String, Slot> slots = new LinkedHashMap<>();

  /** The slots of a model shaped like {@code config} whose weights look like {@code like}. */
  WeightSlots(LlamaConfig config, ModelWeights like) {
    this.config = config;
    this.tied = like.output() == like.embedding();
    this.biases = !like.layers().isEmpty() && like.layers().get(0).qBias() != null;
    int dim = config.dim();
    int kv = config.kvDim();
    int hidden = config.hiddenDim();
    add(EMBEDDING, config.vocabSize(), dim);
    for (int l = 0; l < config.layers(); l++) {
      add(TensorNames.attnNorm(l), dim);
      add(TensorNames.matrix(l, Role.Q), dim, dim);
      add(TensorNames.matrix(l, Role.K), kv, dim);
      add(TensorNames.matrix(l, Role.V), kv, dim);
      add(TensorNames.matrix(l, Role.O), dim, dim);
      if (biases) {
        add(TensorNames.bias(l, Role.Q), dim);
        add(TensorNames.bias(l, Role.K), kv);
        add(TensorNames.bias(l, Role.V), kv);
      }
      add(TensorNames.ffnNorm(l), dim);
      add(TensorNames.matrix(l, Role.GATE), hidden, dim);
      add(TensorNames.matrix(l, Role.UP), hidden, dim);
      add(TensorNames.matrix(l, Role.DOWN), dim, hidden);
    }
    add(OUTPUT_NORM, dim);
    if (!tied) {
      add(OUTPUT, config.vocabSize(), dim);
    }
  }

  private void add(String name, long... shape) {
    slots.put(name, new Slot(name, shape, false));
  }

  LlamaConfig config() {
    return config;
  }

  /** Whether the output head is the embedding (no separate {@code output.weight}). */
  boolean tied() {
    return tied;
  }

  Map<String, Slot> all() {
    return slots;
  }

  Slot slot(String name) {
    return slots.get(name);
  }

  /** Every slot's value in {@code w}, by name, in slot order. */
  Map<String, Object> explode(ModelWeights w) {
    Map<String, Object> out = new LinkedHashMap<>();
    out.put(EMBEDDING, w.embedding());
    for (int l = 0; l < w.layers().size(); l++) {
      LayerWeights lw = w.layers().get(l);
      out.put(TensorNames.attnNorm(l), lw.attnNorm());
      out.put(TensorNames.matrix(l, Role.Q), lw.wq());
      out.put(TensorNames.matrix(l, Role.K), lw.wk());
      out.put(TensorNames.matrix(l, Role.V), lw.wv());
      out.put(TensorNames.matrix(l, Role.O), lw.wo());
      if (biases) {
        out.put(TensorNames.bias(l, Role.Q), lw.qBias());
        out.put(TensorNames.bias(l, Role.K), lw.kBias());
        out.put(TensorNames.bias(l, Role.V), lw.vBias());
      }
      out.put(TensorNames.ffnNorm(l), lw.ffnNorm());
      out.put(TensorNames.matrix(l, Role.GATE), lw.wGate());
      out.put(TensorNames.matrix(l, Role.UP), lw.wUp());
      out.put(TensorNames.matrix(l, Role.DOWN), lw.wDown());
    }
    out.put(OUTPUT_NORM, w.outputNorm());
    if (!tied) {
      out.put(OUTPUT, w.output());
    }
    return out;
  }

  /**
   * The weights made of exactly the objects in {@code values} (no copies).
   *
   * @throws IllegalArgumentException if a slot is missing or holds the wrong kind of value
   */
  ModelWeights assemble(Map<String, Object> values) {
    Tensor emb = tensor(values, EMBEDDING);
    List<LayerWeights> layers = new ArrayList<>();
    for (int l = 0; l < config.layers(); l++) {
      layers.add(
          new LayerWeights(
              vector(values, TensorNames.attnNorm(l)),
              tensor(values, TensorNames.matrix(l, Role.Q)),
              tensor(values, TensorNames.matrix(l, Role.K)),
              tensor(values, TensorNames.matrix(l, Role.V)),
              tensor(values, TensorNames.matrix(l, Role.O)),
              biases ? vector(values, TensorNames.bias(l, Role.Q)) : null,
              biases ? vector(values, TensorNames.bias(l, Role.K)) : null,
              biases ? vector(values, TensorNames.bias(l, Role.V)) : null,
              vector(values, TensorNames.ffnNorm(l)),
              tensor(values, TensorNames.matrix(l, Role.GATE)),
              tensor(values, TensorNames.matrix(l, Role.UP)),
              tensor(values, TensorNames.matrix(l, Role.DOWN))));
    }
    Tensor out = tied ? emb : tensor(values, OUTPUT);
    return new ModelWeights(emb, layers, vector(values, OUTPUT_NORM), out);
  }

  private static Tensor tensor(Map<String, Object> values, String name) {
    if (values.get(name) instanceof Tensor t) {
      return t;
    }
    throw new IllegalArgumentException("tensor " + name + " is missing or not a matrix");
  }

  private static float[] vector(Map<String, Object> values, String name) {
    if (values.get(name) instanceof float[] v) {
      return v;
    }
    throw new IllegalArgumentException("tensor " + name + " is missing or not a vector");
  }

  /** Names of the matrices a recipe may quantize (not the embedding of a tied model). */
  static boolean isLayerMatrix(String name) {
    try {
      return switch (TensorNames.roleOf(name)) {
        case Q, K, V, O, GATE, UP, DOWN -> true;
        default -> false;
      };
    } catch (IllegalArgumentException e) {
      return false;
    }
  }
}
