package io.kvant.engine.model;

import java.util.HashMap;
import java.util.Map;
import java.util.Optional;

/** kvant's tensor names (GGUF style) for the weights of a Llama model. */
public final class TensorNames {
  private TensorNames() {}

  public static final String EMBEDDING = "token_embd.weight";
  public static final String OUTPUT = "output.weight";
  public static final String OUTPUT_NORM = "output_norm.weight";

  /** The name of a layer's matrix with {@code role} (q, k, v, o, gate, up, down). */
  public static String matrix(int layer, Role role) {
    String base =
        switch (role) {
          case Q -> "attn_q";
          case K -> "attn_k";
          case V -> "attn_v";
          case O -> "attn_output";
          case GATE -> "ffn_gate";
          case UP -> "ffn_up";
          case DOWN -> "ffn_down";
          default -> throw new IllegalArgumentException("not a layer matrix: " + role);
        };
    return "blk." + layer + "." + base + ".weight";
  }

  public static String attnNorm(int layer) {
    return "blk." + layer + ".attn_norm.weight";
  }

  public static String ffnNorm(int layer) {
    return "blk." + layer + ".ffn_norm.weight";
  }

  /**
   * The recipe role of a tensor by its name: a layer matrix's role, {@link Role#EMBEDDINGS}, {@link
   * Role#LM_HEAD}, or {@link Role#NORMS} for every vector (norms and biases).
   *
   * @throws IllegalArgumentException for a name that is not one of kvant's tensor names
   */
  public static Role roleOf(String name) {
    switch (name) {
      case EMBEDDING -> {
        return Role.EMBEDDINGS;
      }
      case OUTPUT -> {
        return Role.LM_HEAD;
      }
      case OUTPUT_NORM -> {
        return Role.NORMS;
      }
      default -> {}
    }
    int dot = name.indexOf('.', 4);
    if (name.startsWith("blk.") && dot > 4) {
      String rest = name.substring(dot + 1);
      for (Role r : new Role[] {Role.Q, Role.K, Role.V, Role.O, Role.GATE, Role.UP, Role.DOWN}) {
        if (matrix(0, r).substring("blk.0.".length()).equals(rest)) {
          return r;
        }
      }
      if (rest.equals("attn_norm.weight")
          || rest.equals("ffn_norm.weight")
          || rest.matches("attn_[qkv]\\.bias")) {
        return Role.NORMS;
      }
    }
    throw new IllegalArgumentException("'" + name + "' is not a kvant tensor name");
  }

  /** Bias vectors (Qwen2-style): role q, k or v. */
  public static String bias(int layer, Role role) {
    return "blk." + layer + ".attn_" + role.jsonName() + ".bias";
  }

  /** Names outside the layers and their Hugging Face spelling. */
  private static final Map<String, String> TOP_HF =
      Map.of(
          EMBEDDING, "model.embed_tokens.weight",
          OUTPUT, "lm_head.weight",
          OUTPUT_NORM, "model.norm.weight");

  /**
   * A layer's names after {@code blk.N.} and their Hugging Face spelling after {@code
   * model.layers.N.}.
   */
  private static final Map<String, String> LAYER_HF =
      Map.ofEntries(
          Map.entry("attn_norm.weight", "input_layernorm.weight"),
          Map.entry("ffn_norm.weight", "post_attention_layernorm.weight"),
          Map.entry("attn_q.weight", "self_attn.q_proj.weight"),
          Map.entry("attn_k.weight", "self_attn.k_proj.weight"),
          Map.entry("attn_v.weight", "self_attn.v_proj.weight"),
          Map.entry("attn_output.weight", "self_attn.o_proj.weight"),
          Map.entry("attn_q.bias", "self_attn.q_proj.bias"),
          Map.entry("attn_k.bias", "self_attn.k_proj.bias"),
          Map.entry("attn_v.bias", "self_attn.v_proj.bias"),
          Map.entry("ffn_gate.weight", "mlp.gate_proj.weight"),
          Map.entry("ffn_up.weight", "mlp.up_proj.weight"),
          Map.entry("ffn_down.weight", "mlp.down_proj.weight"));

  private static final Map<String, String> TOP_KVANT = invert(TOP_HF);
  private static final Map<String, String> LAYER_KVANT = invert(LAYER_HF);

  private static Map<String, String> invert(Map<String, String> m) {
    Map<String, String> out = new HashMap<>();
    m.forEach((k, v) -> out.put(v, k));
    return Map.copyOf(out);
  }

  /**
   * Whether {@code name} is one of kvant's tensor names, exactly: {@code blk.N.} with a decimal
   * layer number and a known suffix, or one of the names outside the layers.
   */
  public static boolean isName(String name) {
    if (TOP_HF.containsKey(name)) {
      return true;
    }
    String[] split = splitLayer(name, "blk.");
    return split != null && LAYER_HF.containsKey(split[1]);
  }

  /** {@code [layer, rest]} of {@code prefix + digits + "." + rest}, or null. */
  private static String[] splitLayer(String name, String prefix) {
    if (!name.startsWith(prefix)) {
      return null;
    }
    int dot = name.indexOf('.', prefix.length());
    if (dot <= prefix.length() || dot - prefix.length() > 9) {
      return null;
    }
    String layer = name.substring(prefix.length(), dot);
    if (!layer.chars().allMatch(c -> c >= '0' && c <= '9')) {
      return null;
    }
    return new String[] {layer, name.substring(dot + 1)};
  }

  /**
   * The Hugging Face (PyTorch module) name of a kvant tensor name, as Llama-family safetensors
   * checkpoints spell it: {@code blk.3.attn_q.weight} is {@code
   * model.layers.3.self_attn.q_proj.weight}, {@code token_embd.weight} is {@code
   * model.embed_tokens.weight}.
   *
   * @throws IllegalArgumentException for a name that is not one of kvant's tensor names
   */
  public static String huggingFace(String name) {
    String top = TOP_HF.get(name);
    if (top != null) {
      return top;
    }
    String[] split = splitLayer(name, "blk.");
    String hf = split == null ? null : LAYER_HF.get(split[1]);
    if (hf == null) {
      throw new IllegalArgumentException("'" + name + "' is not a kvant tensor name");
    }
    return "model.layers." + split[0] + "." + hf;
  }

  /**
   * kvant's name for a Hugging Face (PyTorch module) parameter name, the inverse of {@link
   * #huggingFace}; empty when it names no weight of a Llama-family model.
   */
  public static Optional<String> fromHuggingFace(String hfName) {
    String top = TOP_KVANT.get(hfName);
    if (top != null) {
      return Optional.of(top);
    }
    String[] split = splitLayer(hfName, "model.layers.");
    String kv = split == null ? null : LAYER_KVANT.get(split[1]);
    return kv == null ? Optional.empty() : Optional.of("blk." + split[0] + "." + kv);
  }
}
