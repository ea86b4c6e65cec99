package io.kvant.engine.model;

import io.kvant.engine.tensor.Tensor;
import java.util.List;

/**
 * All weights of a Llama-family model.
 *
 * @param embedding token embedding, [vocab][dim]
 * @param layers one entry per block
 * @param outputNorm final RMSNorm weight, [dim]
 * @param output output head, [vocab][dim]; the same object as {@code embedding} when tied
 */
public record ModelWeights(
    Tensor embedding, List<LayerWeights> layers, float[] outputNorm, Tensor output) {
  public ModelWeights {
    layers = List.copyOf(layers);
  }

  /** Bytes of all weight matrices with their scales (norms excluded; a tied head counted once). */
  public long matrixBytes() {
    long total = embedding.storageBytes();
    if (output != embedding) {
      total += output.storageBytes();
    }
    for (LayerWeights l : layers) {
      total +=
          l.wq().storageBytes()
              + l.wk().storageBytes()
              + l.wv().storageBytes()
              + l.wo().storageBytes()
              + l.wGate().storageBytes()
              + l.wUp().storageBytes()
              + l.wDown().storageBytes();
    }
    return total;
  }
}
