package io.kvant.engine.forward;

import io.kvant.engine.tensor.ComputePool;
import io.kvant.engine.tensor.Tensor;
import io.kvant.engine.tensor.packed.CodeSlabs;
import io.kvant.engine.tensor.packed.PackedMatrix;
import java.util.Map;
import java.util.WeakHashMap;

/**
 * The integer repacking of weight tensors, made once per tensor and shared by every {@link
 * Transformer} given this cache: model versions that share unchanged tensors (a hot swap's delta)
 * then share their packed copies too, instead of holding one per version.
 *
 * <p>Keys are held weakly (tensors compare by identity), and a packed copy does not refer to its
 * tensor, so a copy goes when the last version using its tensor is released. Thread-safe.
 */
final class WeightPacks {
  // A tensor without an integer kernel maps to NONE, so it is not looked at again.
  private static final Object NONE = new Object();
  private final Map<Tensor, Object> packs = new WeakHashMap<>();
  // The packed codes of every tensor packed here share huge-page slabs (CodeSlabs' note)
  private final CodeSlabs slabs = CodeSlabs.forThisOs();

  /** {@code t} packed (once), or {@code null} if its type has no integer kernel. */
  synchronized PackedMatrix get(Tensor t, ComputePool pool) {
    Object p = packs.get(t);
    if (p == null) {
      PackedMatrix m = PackedMatrix.pack(t, pool, true, slabs);
      p = m == null ? NONE : m;
      packs.put(t, p);
    }
    return p == NONE ? null : (PackedMatrix) p;
  }

  /** Tensors looked at and still alive (for tests). */
  synchronized int size() {
    return packs.size();
  }
}
