package io.kvant.quant.encoding;

import io.kvant.engine.model.TensorNames;
import java.util.Optional;

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

  /**
   * kvant's name for an exported parameter name, or empty when it names no Llama weight. The names
   * themselves and their Hugging Face spelling are the engine's {@link TensorNames}; this class
   * only undoes what an export adds around them (ONNX node paths, PEFT prefixes, a missing {@code
   * .weight}).
   */
  public static Optional<String> toKvant(String exported) {
    if (TensorNames.isName(exported)) {
      return Optional.of(exported);
    }
    return TensorNames.fromHuggingFace(normalize(exported));
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
