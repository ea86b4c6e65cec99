package io.kvant.quant.encoding;

import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Maps the parameter names real AIMET exports use to kvant's tensor names ({@code
 * blk.N.attn_q.weight}, GGUF style).
 *
 * <p>Accepted spellings, for Llama-family models (Llama, Mistral, Qwen2):
 *
 * <ul>
 *   <li>kvant's own names, as kvant writes them;
 *   <li>PyTorch / Hugging Face module parameter names, as AIMET's PyTorch export writes them:
 *       {@code model.layers.3.self_attn.q_proj.weight}, {@code
 *       model.layers.3.mlp.down_proj.weight}, {@code model.embed_tokens.weight}, {@code
 *       lm_head.weight}, with or without a leading {@code base_model.model.} (PEFT wrappers) and
 *       with or without the trailing {@code .weight};
 *   <li>ONNX export names: the same names with {@code /} separators, as node paths of a {@code
 *       torch.onnx} export ({@code /model/layers.3/self_attn/q_proj/MatMul}); a trailing operator
 *       component ({@code MatMul}, {@code Gemm}, {@code Gather}) is dropped.
 * </ul>
 *
 * <p>Anonymous ONNX initializers ({@code onnx::MatMul_1234}) carry no module name and are not
 * mapped: {@link #toKvant} is empty for them, and the reader rejects them naming them.
 */
public final class ParamNames {
  private ParamNames() {}

  private static final Pattern KVANT =
      Pattern.compile(
          "token_embd\\.weight|output\\.weight|output_norm\\.weight"
              + "|blk\\.\\d+\\.(attn_q|attn_k|attn_v|attn_output|ffn_gate|ffn_up|ffn_down"
              + "|attn_norm|ffn_norm)\\.weight|blk\\.\\d+\\.attn_[qkv]\\.bias");
  private static final Pattern HF_LAYER =
      Pattern.compile("model\\.layers\\.(\\d+)\\.(self_attn|mlp)\\.(\\w+)_proj\\.(weight|bias)");
  private static final Pattern HF_NORM =
      Pattern.compile(
          "model\\.layers\\.(\\d+)\\.(input_layernorm|post_attention_layernorm)\\.weight");
  private static final Map<String, String> PROJ =
      Map.of(
          "q", "attn_q",
          "k", "attn_k",
          "v", "attn_v",
          "o", "attn_output",
          "gate", "ffn_gate",
          "up", "ffn_up",
          "down", "ffn_down");
  private static final Map<String, String> TOP =
      Map.of(
          "model.embed_tokens.weight", "token_embd.weight",
          "lm_head.weight", "output.weight",
          "model.norm.weight", "output_norm.weight");

  /** kvant's name for an exported parameter name, or empty when it names no Llama weight. */
  public static Optional<String> toKvant(String exported) {
    if (KVANT.matcher(exported).matches()) {
      return Optional.of(exported);
    }
    String n = normalize(exported);
    String top = TOP.get(n);
    if (top != null) {
      return Optional.of(top);
    }
    Matcher m = HF_LAYER.matcher(n);
    if (m.matches()) {
      String proj = PROJ.get(m.group(3));
      boolean attention = m.group(2).equals("self_attn");
      boolean attnProj = proj != null && proj.startsWith("attn_");
      if (proj == null || attention != attnProj) {
        return Optional.empty();
      }
      if (m.group(4).equals("bias") && !(attention && !m.group(3).equals("o"))) {
        return Optional.empty();
      }
      return Optional.of("blk." + m.group(1) + "." + proj + "." + m.group(4));
    }
    Matcher nm = HF_NORM.matcher(n);
    if (nm.matches()) {
      String which = nm.group(2).equals("input_layernorm") ? "attn_norm" : "ffn_norm";
      return Optional.of("blk." + nm.group(1) + "." + which + ".weight");
    }
    return Optional.empty();
  }

  /** Dots for separators, no PEFT prefix, no operator suffix, {@code .weight} when missing. */
  private static String normalize(String name) {
    String n = name;
    if (n.startsWith("/")) {
      n = n.substring(1);
      int last = n.lastIndexOf('/');
      if (last > 0 && n.substring(last + 1).matches("MatMul|Gemm|Gather|Mul|Add")) {
        n = n.substring(0, last);
      }
      n = n.replace('/', '.');
    }
    if (n.startsWith("base_model.model.")) {
      n = n.substring("base_model.model.".length());
    }
    if (!n.endsWith(".weight") && !n.endsWith(".bias")) {
      n = n + ".weight";
    }
    return n;
  }
}
