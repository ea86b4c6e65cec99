package io.kvant.engine.forward;

import io.kvant.engine.tensor.ComputePool;
import io.kvant.engine.tensor.Tensor;
import io.kvant.engine.tensor.packed.PackedMatrix;
import io.kvant.engine.tensor.packed.QuantizedInput;

/**
 * One weight matrix as the forward pass applies it: the float {@link Tensor}, and its integer
 * repacking when {@link MatmulKernels#INTEGER} was asked for and the type has one.
 */
final class Linear {
  final Tensor tensor;
  final PackedMatrix packed;
  // The output head's (whose result is the token choice) float recomputation of its largest
  // logits; null for every other matrix and on the float kernels.
  private final HeadRefinement refinement;

  private Linear(Tensor tensor, PackedMatrix packed, boolean head) {
    this.tensor = tensor;
    this.packed = packed;
    this.refinement = head && packed != null ? new HeadRefinement(tensor) : null;
  }

  static Linear of(Tensor t, MatmulKernels kernels, WeightPacks packs, ComputePool pool) {
    return new Linear(t, kernels == MatmulKernels.INTEGER ? packs.get(t, pool) : null, false);
  }

  /**
   * The output head: under {@link MatmulKernels#INTEGER} it quantizes its input itself ({@link
   * #apply} does it) and its largest logits are computed again in float ({@link HeadRefinement}),
   * since int8 alone moved the top-1 token too often against the float path (docs/DECISIONS.md).
   */
  static Linear head(Tensor t, MatmulKernels kernels, WeightPacks packs, ComputePool pool) {
    return new Linear(t, kernels == MatmulKernels.INTEGER ? packs.get(t, pool) : null, true);
  }

  /** Whether this matrix wants int8 activations quantized by the caller. */
  boolean integer() {
    return packed != null && refinement == null;
  }

  /**
   * {@code out = W x} for {@code n} rows; {@code xq} must hold {@code x} quantized when {@link
   * #integer()}. The head quantizes {@code x} into {@code xq} itself.
   */
  void apply(ComputePool pool, float[] x, QuantizedInput xq, int n, float[] out) {
    if (packed == null) {
      pool.matmul(tensor, x, n, out);
      return;
    }
    if (refinement != null) {
      xq.quantize(x, n, packed.cols());
      applyPacked(pool, xq, n, out);
      refinement.refine(pool, x, n, out);
      return;
    }
    applyPacked(pool, xq, n, out);
  }

  private void applyPacked(ComputePool pool, QuantizedInput xq, int n, float[] out) {
    long work = (long) packed.rows() * packed.cols() * n;
    if (work < ComputePool.MIN_PARALLEL_WORK) {
      packed.matmul(xq, out);
      return;
    }
    pool.parallelRanges(
        packed.panels(), 1, work, (start, end) -> packed.matmul(xq, out, start, end));
  }

  /**
   * {@code outs[i] = ls[i] x} for matrices that read the same input (q/k/v, gate/up), as one
   * parallel call when all are integer: their panels are split across the threads as one range, so
   * the team is handed work once, not once per matrix, and small matrices (k and v of a grouped-
   * query model) are split too. Results are those of {@link #apply} on each.
   */
  static void applyAll(
      ComputePool pool, Linear[] ls, float[] x, QuantizedInput xq, int n, float[][] outs) {
    long work = 0;
    int panels = 0;
    boolean allFloat = true;
    for (Linear l : ls) {
      allFloat &= l.packed == null;
    }
    if (allFloat) {
      applyAllFloat(pool, ls, x, n, outs);
      return;
    }
    for (Linear l : ls) {
      if (!l.integer()) {
        for (int i = 0; i < ls.length; i++) {
          ls[i].apply(pool, x, xq, n, outs[i]);
        }
        return;
      }
      work += (long) l.packed.rows() * l.packed.cols() * n;
      panels += l.packed.panels();
    }
    if (work < ComputePool.MIN_PARALLEL_WORK) {
      for (int i = 0; i < ls.length; i++) {
        ls[i].packed.matmul(xq, outs[i]);
      }
      return;
    }
    pool.parallelRanges(
        panels,
        1,
        work,
        (start, end) -> {
          int first = 0;
          for (int i = 0; i < ls.length && start < end; i++) {
            PackedMatrix m = ls[i].packed;
            int from = Math.max(start, first) - first;
            int to = Math.min(end, first + m.panels()) - first;
            if (from < to) {
              m.matmul(xq, outs[i], from, to);
            }
            first += m.panels();
          }
        });
  }

  /**
   * The float kernels' form of {@link #applyAll}: when each matrix would be split across the
   * threads anyway, the rows of all of them are split as one range, one hand-off instead of one per
   * matrix (under 16 streams the bundled model's q/k/v and gate/up were five barriers per layer).
   * Each output element is computed as by {@link Tensor#matmul} of its own matrix, whatever the
   * range, so results are unchanged.
   */
  private static void applyAllFloat(
      ComputePool pool, Linear[] ls, float[] x, int n, float[][] outs) {
    int rows = 0;
    long work = 0;
    boolean eachParallel = true;
    for (Linear l : ls) {
      rows += l.tensor.rows();
      work += (long) l.tensor.rows() * l.tensor.cols() * n;
      eachParallel &= (long) l.tensor.rows() * l.tensor.cols() * n >= ComputePool.MIN_PARALLEL_WORK;
    }
    if (!eachParallel) {
      // Merged only where every matrix alone would be split anyway: at one row, gate/up of the
      // bundled model are each run on the caller, and splitting them together measured slower
      // (a worker woken per matrix pair costs more than it saves on a loaded machine).
      for (int i = 0; i < ls.length; i++) {
        pool.matmul(ls[i].tensor, x, n, outs[i]);
      }
      return;
    }
    pool.parallelRanges(
        rows,
        ComputePool.ROW_GRAIN,
        work,
        (start, end) -> {
          int first = 0;
          for (int i = 0; i < ls.length && start < end; i++) {
            Tensor t = ls[i].tensor;
            int from = Math.max(start, first) - first;
            int to = Math.min(end, first + t.rows()) - first;
            if (from < to) {
              t.matmul(x, n, outs[i], from, to);
            }
            first += t.rows();
          }
        });
  }
}
