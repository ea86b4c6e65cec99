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
}
