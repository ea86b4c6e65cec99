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

  /**
   * The distinct weight matrices, embedding first, then the head (when not tied), then each layer's
   * q, k, v, o, gate, up, down. Identity matters: an object held twice (a tied head is the
   * embedding) is listed once.
   */
  public List<Tensor> matrices() {
    java.util.Set<Tensor> seen =
        java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
    List<Tensor> out = new java.util.ArrayList<>();
    List<Tensor> all = new java.util.ArrayList<>(List.of(embedding, output));
    for (LayerWeights l : layers) {
      all.addAll(List.of(l.wq(), l.wk(), l.wv(), l.wo(), l.wGate(), l.wUp(), l.wDown()));
    }
    for (Tensor t : all) {
      if (seen.add(t)) {
        out.add(t);
      }
    }
    return out;
  }

  /** Bytes of all weight matrices with their scales (norms excluded; a tied head counted once). */
  public long matrixBytes() {
    long total = 0;
    for (Tensor t : matrices()) {
      total += t.storageBytes();
    }
    return total;
  }
}
