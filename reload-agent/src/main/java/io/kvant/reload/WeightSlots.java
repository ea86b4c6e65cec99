package io.kvant.reload;

import io.kvant.engine.model.LayerWeights;
import io.kvant.engine.model.LlamaConfig;
import io.kvant.engine.model.ModelWeights;
import io.kvant.engine.tensor.Tensor;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The named tensors of a Llama model (GGUF-style names, as {@code io.kvant.quant.quantize} and the
 * GGUF loader use) and their expected shapes, and the two-way mapping between a {@link
 * ModelWeights} and a name-to-value map. A value is a {@link Tensor} for a matrix and a {@code
 * float[]} for a norm or bias vector.
 *
 * <p>{@link #assemble} puts the given objects in place as they are, so a version built from its
 * parent's map with a few entries replaced shares every other object with the parent
 * (copy-on-write).
 */
final class WeightSlots {
  static final String EMBEDDING = "token_embd.weight";
  static final String OUTPUT = "output.weight";
  static final String OUTPUT_NORM = "output_norm.weight";
  private static final String[] MATRICES = {
    "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"
  };

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
      String p = "blk." + l + ".";
      add(p + "attn_norm.weight", dim);
      add(p + "attn_q.weight", dim, dim);
      add(p + "attn_k.weight", kv, dim);
      add(p + "attn_v.weight", kv, dim);
      add(p + "attn_output.weight", dim, dim);
      if (biases) {
        add(p + "attn_q.bias", dim);
        add(p + "attn_k.bias", kv);
        add(p + "attn_v.bias", kv);
      }
      add(p + "ffn_norm.weight", dim);
      add(p + "ffn_gate.weight", hidden, dim);
      add(p + "ffn_up.weight", hidden, dim);
      add(p + "ffn_down.weight", dim, hidden);
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
      String p = "blk." + l + ".";
      out.put(p + "attn_norm.weight", lw.attnNorm());
      out.put(p + "attn_q.weight", lw.wq());
      out.put(p + "attn_k.weight", lw.wk());
      out.put(p + "attn_v.weight", lw.wv());
      out.put(p + "attn_output.weight", lw.wo());
      if (biases) {
        out.put(p + "attn_q.bias", lw.qBias());
        out.put(p + "attn_k.bias", lw.kBias());
        out.put(p + "attn_v.bias", lw.vBias());
      }
      out.put(p + "ffn_norm.weight", lw.ffnNorm());
      out.put(p + "ffn_gate.weight", lw.wGate());
      out.put(p + "ffn_up.weight", lw.wUp());
      out.put(p + "ffn_down.weight", lw.wDown());
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
      String p = "blk." + l + ".";
      layers.add(
          new LayerWeights(
              vector(values, p + "attn_norm.weight"),
              tensor(values, p + "attn_q.weight"),
              tensor(values, p + "attn_k.weight"),
              tensor(values, p + "attn_v.weight"),
              tensor(values, p + "attn_output.weight"),
              biases ? vector(values, p + "attn_q.bias") : null,
              biases ? vector(values, p + "attn_k.bias") : null,
              biases ? vector(values, p + "attn_v.bias") : null,
              vector(values, p + "ffn_norm.weight"),
              tensor(values, p + "ffn_gate.weight"),
              tensor(values, p + "ffn_up.weight"),
              tensor(values, p + "ffn_down.weight")));
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
    for (String m : MATRICES) {
      if (name.endsWith("." + m + ".weight")) {
        return true;
      }
    }
    return false;
  }
}
