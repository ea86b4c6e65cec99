package io.kvant.quant.quantize;

import io.kvant.engine.forward.ActivationObserver;
import io.kvant.engine.model.LayerWeights;
import io.kvant.engine.model.ModelWeights;
import io.kvant.engine.tensor.Tensor;
import io.kvant.quant.encoding.WeightFormat;
import java.util.ArrayList;
import java.util.List;

/**
 * Makes the CPU engine compute what the CUDA backend's W8A8 products compute (W8A8 forced from one
 * row): an {@link ActivationObserver} that rewrites the input of every matrix W8A8 reads (INT8
 * per-channel, FP8 E4M3) with its per-token quantized values ({@link TokenQuantizer}) before the
 * weight-only products apply the matrices. Inputs of other matrices stay as they are. For measuring
 * what activation quantization costs on real text on the CPU ({@code kvant eval --simulate-w8a8});
 * not a serving path.
 *
 * <p>Differences from the GPU: float summation order, and the GPU keeps FP8 products on its F16
 * tiles where cuBLASLt refuses the shape (outputs not a multiple of 16); here every E4M3 matrix is
 * simulated.
 */
public final class W8a8Simulation implements ActivationObserver {
  /** Per layer (then lm_head last), per site: the activation code, {@code null} for float. */
  private final WeightFormat[][] codes;

  private int simulated;

  /**
   * @throws IllegalArgumentException where matrices sharing an input differ in whether (or in which
   *     code) W8A8 would quantize it: one input buffer cannot be both
   */
  public W8a8Simulation(ModelWeights weights) {
    int layers = weights.layers().size();
    codes = new WeightFormat[layers + 1][Site.values().length];
    for (int l = 0; l < layers; l++) {
      LayerWeights w = weights.layers().get(l);
      codes[l][Site.ATTN_IN.ordinal()] = shared(l, "q, k, v", w.wq(), w.wk(), w.wv());
      codes[l][Site.ATTN_OUT.ordinal()] = shared(l, "o", w.wo());
      codes[l][Site.FFN_IN.ordinal()] = shared(l, "gate, up", w.wGate(), w.wUp());
      codes[l][Site.FFN_HIDDEN.ordinal()] = shared(l, "down", w.wDown());
    }
    codes[layers][Site.HEAD_IN.ordinal()] = shared(-1, "lm_head", weights.output());
  }

  /**
   * The per-token activation code W8A8 uses with {@code t}, or {@code null} when it reads floats.
   */
  public static WeightFormat activationCode(Tensor t) {
    return switch (t.dtype()) {
      case I8 -> WeightFormat.INT8;
      case F8_E4M3 -> WeightFormat.FP8_E4M3;
      default -> null;
    };
  }

  private static WeightFormat shared(int layer, String roles, Tensor... tensors) {
    List<WeightFormat> seen = new ArrayList<>();
    for (Tensor t : tensors) {
      seen.add(activationCode(t));
    }
    if (seen.stream().distinct().count() > 1) {
      throw new IllegalArgumentException(
          "cannot simulate W8A8: "
              + roles
              + (layer < 0 ? "" : " of layer " + layer)
              + " share an input but their types ("
              + java.util.Arrays.stream(tensors).map(t -> t.dtype().name()).toList()
              + ") quantize it differently");
    }
    return seen.get(0);
  }

  @Override
  public void observe(int layer, Site site, float[] x, int rows, int width) {
    WeightFormat f = codes[layer < 0 ? codes.length - 1 : layer][site.ordinal()];
    if (f != null) {
      TokenQuantizer.fakeQuantize(x, rows, width, f);
      simulated++;
    }
  }

  /** Inputs rewritten so far (one per site and forward step). */
  public int simulated() {
    return simulated;
  }

  /**
   * Whether any matrix of {@code weights} is read by W8A8 (else the simulation changes nothing).
   */
  public static boolean appliesTo(ModelWeights weights) {
    if (activationCode(weights.output()) != null) {
      return true;
    }
    for (LayerWeights w : weights.layers()) {
      for (Tensor t :
          new Tensor[] {w.wq(), w.wk(), w.wv(), w.wo(), w.wGate(), w.wUp(), w.wDown()}) {
        if (activationCode(t) != null) {
          return true;
        }
      }
    }
    return false;
  }
}
