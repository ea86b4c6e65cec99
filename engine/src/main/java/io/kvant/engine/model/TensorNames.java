package io.kvant.engine.model;

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

  /**
   * The Hugging Face (PyTorch module) name of a kvant tensor name, as Llama-family safetensors
   * checkpoints spell it: {@code blk.3.attn_q.weight} is {@code
   * model.layers.3.self_attn.q_proj.weight}, {@code token_embd.weight} is {@code
   * model.embed_tokens.weight}.
   *
   * @throws IllegalArgumentException for a name that is not one of kvant's tensor names
   */
  public static String huggingFace(String name) {
    switch (name) {
      case EMBEDDING -> {
        return "model.embed_tokens.weight";
      }
      case OUTPUT -> {
        return "lm_head.weight";
      }
      case OUTPUT_NORM -> {
        return "model.norm.weight";
      }
      default -> {}
    }
    int dot = name.indexOf('.', 4);
    if (name.startsWith("blk.") && dot > 4) {
      String layer = name.substring(4, dot);
      String hf =
          switch (name.substring(dot + 1)) {
            case "attn_norm.weight" -> "input_layernorm.weight";
            case "ffn_norm.weight" -> "post_attention_layernorm.weight";
            case "attn_q.weight" -> "self_attn.q_proj.weight";
            case "attn_k.weight" -> "self_attn.k_proj.weight";
            case "attn_v.weight" -> "self_attn.v_proj.weight";
            case "attn_output.weight" -> "self_attn.o_proj.weight";
            case "attn_q.bias" -> "self_attn.q_proj.bias";
            case "attn_k.bias" -> "self_attn.k_proj.bias";
            case "attn_v.bias" -> "self_attn.v_proj.bias";
            case "ffn_gate.weight" -> "mlp.gate_proj.weight";
            case "ffn_up.weight" -> "mlp.up_proj.weight";
            case "ffn_down.weight" -> "mlp.down_proj.weight";
            default -> null;
          };
      if (hf != null && layer.chars().allMatch(Character::isDigit)) {
        return "model.layers." + layer + "." + hf;
      }
    }
    throw new IllegalArgumentException("'" + name + "' is not a kvant tensor name");
  }
}
