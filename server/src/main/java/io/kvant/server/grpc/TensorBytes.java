package io.kvant.server.grpc;

import io.kvant.engine.model.LayerWeights;
import io.kvant.engine.model.ModelWeights;
import io.kvant.engine.tensor.Tensor;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;

/** The distinct weight matrices of a model (a tied head counted once). */
final class TensorBytes {
  private TensorBytes() {}

  static List<Tensor> tensors(ModelWeights w) {
    Set<Tensor> seen = Collections.newSetFromMap(new IdentityHashMap<>());
    List<Tensor> out = new ArrayList<>();
    add(out, seen, w.embedding());
    add(out, seen, w.output());
    for (LayerWeights l : w.layers()) {
      for (Tensor t : List.of(l.wq(), l.wk(), l.wv(), l.wo(), l.wGate(), l.wUp(), l.wDown())) {
        add(out, seen, t);
      }
    }
    return out;
  }

  private static void add(List<Tensor> out, Set<Tensor> seen, Tensor t) {
    if (seen.add(t)) {
      out.add(t);
    }
  }
}
