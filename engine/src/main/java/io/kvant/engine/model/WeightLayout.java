package io.kvant.engine.model;

import io.kvant.engine.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The named weights of a Llama model and their shapes: kvant's tensor names (spelled by {@link
 * TensorNames}) in a fixed order, and the two-way mapping between a {@link ModelWeights} and a
 * name-to-{@link Weight} map. Loaders and writers of named tensors (version folders, the reload
 * agent, {@code agent publish}) go through it rather than listing the names again.
 *
 * <p>{@link #assemble} puts the given objects in place as they are, so weights built from another
 * version's map with a few entries replaced share every other object with it (copy-on-write).
 */
public final class WeightLayout {
  /** One named slot: its shape ({@code [rows, cols]} for a matrix, {@code [n]} for a vector). */
  public record Slot(String name, long[] shape) {
    public boolean matrix() {
      return shape.length == 2;
    }

    /** {@code [rows, cols]} of a matrix slot. */
    public int rows() {
      return (int) shape[0];
    }

    public int cols() {
      return (int) shape[1];
    }

    @Override
    public String toString() {
      return name + Arrays.toString(shape);
    }
  }

  private final LlamaConfig config;
  private final boolean tied;
  private final boolean biases;
  private final Map<String, Slot> slots = new LinkedHashMap<>();

  /**
   * The layout of a model shaped like {@code config}.
   *
   * @param tied whether the output head is the embedding (no {@code output.weight})
   * @param biases whether layers have q/k/v bias vectors (Qwen2-style)
   */
  public WeightLayout(LlamaConfig config, boolean tied, boolean biases) {
    this.config = config;
    this.tied = tied;
    this.biases = biases;
    int dim = config.dim();
    int kv = config.kvDim();
    int hidden = config.hiddenDim();
    add(TensorNames.EMBEDDING, config.vocabSize(), dim);
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
    add(TensorNames.OUTPUT_NORM, dim);
    if (!tied) {
      add(TensorNames.OUTPUT, config.vocabSize(), dim);
    }
  }

  /** The layout of a model shaped like {@code config} whose weights look like {@code like}. */
  public static WeightLayout of(LlamaConfig config, ModelWeights like) {
    return new WeightLayout(
        config,
        like.output() == like.embedding(),
        !like.layers().isEmpty() && like.layers().get(0).qBias() != null);
  }

  /** The layout of {@code model}. */
  public static WeightLayout of(Model model) {
    return of(model.config(), model.weights());
  }

  private void add(String name, long... shape) {
    slots.put(name, new Slot(name, shape));
  }

  public LlamaConfig config() {
    return config;
  }

  /** Whether the output head is the embedding (no separate {@code output.weight}). */
  public boolean tied() {
    return tied;
  }

  /** Every slot by name, in layout order (unmodifiable). */
  public Map<String, Slot> all() {
    return Collections.unmodifiableMap(slots);
  }

  /** The slot called {@code name}, or null when the model has no such weight. */
  public Slot slot(String name) {
    return slots.get(name);
  }

  /** Every weight of {@code w} by name, in layout order (the objects themselves, no copies). */
  public Map<String, Weight> named(ModelWeights w) {
    Map<String, Weight> out = new LinkedHashMap<>();
    out.put(TensorNames.EMBEDDING, new Weight.Matrix(w.embedding()));
    for (int l = 0; l < w.layers().size(); l++) {
      LayerWeights lw = w.layers().get(l);
      out.put(TensorNames.attnNorm(l), new Weight.Vector(lw.attnNorm()));
      out.put(TensorNames.matrix(l, Role.Q), new Weight.Matrix(lw.wq()));
      out.put(TensorNames.matrix(l, Role.K), new Weight.Matrix(lw.wk()));
      out.put(TensorNames.matrix(l, Role.V), new Weight.Matrix(lw.wv()));
      out.put(TensorNames.matrix(l, Role.O), new Weight.Matrix(lw.wo()));
      if (biases) {
        out.put(TensorNames.bias(l, Role.Q), new Weight.Vector(lw.qBias()));
        out.put(TensorNames.bias(l, Role.K), new Weight.Vector(lw.kBias()));
        out.put(TensorNames.bias(l, Role.V), new Weight.Vector(lw.vBias()));
      }
      out.put(TensorNames.ffnNorm(l), new Weight.Vector(lw.ffnNorm()));
      out.put(TensorNames.matrix(l, Role.GATE), new Weight.Matrix(lw.wGate()));
      out.put(TensorNames.matrix(l, Role.UP), new Weight.Matrix(lw.wUp()));
      out.put(TensorNames.matrix(l, Role.DOWN), new Weight.Matrix(lw.wDown()));
    }
    out.put(TensorNames.OUTPUT_NORM, new Weight.Vector(w.outputNorm()));
    if (!tied) {
      out.put(TensorNames.OUTPUT, new Weight.Matrix(w.output()));
    }
    return out;
  }

  /**
   * The weights made of exactly the objects in {@code values} (no copies).
   *
   * @throws IllegalArgumentException if a slot is missing or holds the wrong kind of weight
   */
  public ModelWeights assemble(Map<String, Weight> values) {
    Tensor emb = matrix(values, TensorNames.EMBEDDING);
    List<LayerWeights> layers = new ArrayList<>();
    for (int l = 0; l < config.layers(); l++) {
      layers.add(
          new LayerWeights(
              vector(values, TensorNames.attnNorm(l)),
              matrix(values, TensorNames.matrix(l, Role.Q)),
              matrix(values, TensorNames.matrix(l, Role.K)),
              matrix(values, TensorNames.matrix(l, Role.V)),
              matrix(values, TensorNames.matrix(l, Role.O)),
              biases ? vector(values, TensorNames.bias(l, Role.Q)) : null,
              biases ? vector(values, TensorNames.bias(l, Role.K)) : null,
              biases ? vector(values, TensorNames.bias(l, Role.V)) : null,
              vector(values, TensorNames.ffnNorm(l)),
              matrix(values, TensorNames.matrix(l, Role.GATE)),
              matrix(values, TensorNames.matrix(l, Role.UP)),
              matrix(values, TensorNames.matrix(l, Role.DOWN))));
    }
    Tensor out = tied ? emb : matrix(values, TensorNames.OUTPUT);
    return new ModelWeights(emb, layers, vector(values, TensorNames.OUTPUT_NORM), out);
  }

  private static Tensor matrix(Map<String, Weight> values, String name) {
    return switch (values.get(name)) {
      case Weight.Matrix m -> m.tensor();
      case Weight.Vector v ->
          throw new IllegalArgumentException(name + " is a vector, not a matrix");
      case null -> throw new IllegalArgumentException(name + " is missing");
    };
  }

  private static float[] vector(Map<String, Weight> values, String name) {
    return switch (values.get(name)) {
      case Weight.Vector v -> v.values();
      case Weight.Matrix m ->
          throw new IllegalArgumentException(name + " is a matrix, not a vector");
      case null -> throw new IllegalArgumentException(name + " is missing");
    };
  }

  /**
   * Whether {@code name} is a layer's matrix (q, k, v, o, gate, up, down): what recipes quantize.
   */
  public static boolean isLayerMatrix(String name) {
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
