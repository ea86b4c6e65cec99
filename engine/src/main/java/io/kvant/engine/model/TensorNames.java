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

  /** Bias vectors (Qwen2-style): role q, k or v. */
  public static String bias(int layer, Role role) {
    return "blk." + layer + ".attn_" + role.jsonName() + ".bias";
  }
}
