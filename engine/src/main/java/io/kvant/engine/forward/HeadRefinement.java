package io.kvant.engine.forward;

import io.kvant.engine.tensor.ComputePool;
import io.kvant.engine.tensor.Tensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The output head's logits where they decide the token: after the integer pass (int8 activations,
 * one term) over all rows, the {@link #CANDIDATES} largest logits of each input row are computed
 * again in float from the dequantized weight rows ({@link Tensor#dotRow}: the float path's
 * arithmetic), so the tokens that greedy decoding, top-k and the bulk of top-p choose between carry
 * the float path's values, bit for bit, and the rest keep the integer pass's.
 *
 * <p>Why not a float head, or two int8 terms for every row (the head until session 16): the head is
 * 21% of the weights of SmolLM2-135M and Llama-3.2-1B (tied embeddings); in float it was half of a
 * single-stream step, and two terms doubled its integer work. One int8 term moves a logit by at
 * most {@code sum_j |w_j| * d_j / 2} ({@code d_j} the activation's quantization step); the float
 * token is lost only if {@link #CANDIDATES} other logits overtake it within that error, that is if
 * 32 tokens are about as likely as the top one. docs/DECISIONS.md has the measured agreement.
 *
 * <p>Not thread-safe: one instance per head, used by one forward pass at a time.
 */
final class HeadRefinement {
  /** Rows recomputed in float per input row. */
  static final int CANDIDATES = 32;

  private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

  private final Tensor weights;
  // Scratch of the single-row call (decode of one sequence), kept between calls.
  private final Scratch single;

  HeadRefinement(Tensor weights) {
    this.weights = weights;
    this.single = new Scratch(weights.cols());
  }

  /**
   * Replaces, for each input row {@code b} in {@code [0, n)}, the {@link #CANDIDATES} largest of
   * {@code out[b*rows .. (b+1)*rows)} (all of them if fewer) by the float product of that weight
   * row with {@code x[b*cols ..)}; the other logits are left as they are. Several rows are split
   * across {@code pool}'s threads (each row's result does not depend on the split).
   */
  void refine(ComputePool pool, float[] x, int n, float[] out) {
    if (n == 1) {
      refineRows(x, 0, 1, out, single);
      return;
    }
    pool.parallelRanges(
        n, 1, (start, end) -> refineRows(x, start, end, out, new Scratch(weights.cols())));
  }

  private void refineRows(float[] x, int start, int end, float[] out, Scratch s) {
    int rows = weights.rows();
    int cols = weights.cols();
    for (int b = start; b < end; b++) {
      int k = largest(out, b * rows, rows, s.index, s.value);
      for (int i = 0; i < k; i++) {
        out[b * rows + s.index[i]] = weights.dotRow(s.index[i], x, b * cols, s.row);
      }
    }
  }

  /** One thread's working arrays. */
  private static final class Scratch {
    final float[] row;
    final int[] index = new int[CANDIDATES];
    final float[] value = new float[CANDIDATES];

    Scratch(int cols) {
      row = new float[cols];
    }
  }

  /**
   * The indices (relative to {@code off}) of the {@code min(idx.length, len)} largest of {@code
   * v[off .. off+len)} into {@code idx}, in no particular order, and their values into {@code val};
   * returns how many. Equal values: the first ones seen win. NaN is never chosen over a number.
   */
  static int largest(float[] v, int off, int len, int[] idx, float[] val) {
    int k = Math.min(idx.length, len);
    if (k == 0) {
      return 0;
    }
    for (int i = 0; i < k; i++) {
      idx[i] = i;
      val[i] = v[off + i];
    }
    int minAt = minIndex(val, k);
    float min = val[minAt];
    int i = k;
    // Most values are below the k-th largest seen so far: one compare per vector skips them.
    int vectorEnd = k + (len - k) / F.length() * F.length();
    for (; i < vectorEnd; i += F.length()) {
      if (!FloatVector.fromArray(F, v, off + i).compare(VectorOperators.GT, min).anyTrue()
          && !Float.isNaN(min)) {
        continue;
      }
      for (int j = i; j < i + F.length(); j++) {
        if (v[off + j] > min || (Float.isNaN(min) && !Float.isNaN(v[off + j]))) {
          idx[minAt] = j;
          val[minAt] = v[off + j];
          minAt = minIndex(val, k);
          min = val[minAt];
        }
      }
    }
    for (; i < len; i++) {
      if (v[off + i] > min || (Float.isNaN(min) && !Float.isNaN(v[off + i]))) {
        idx[minAt] = i;
        val[minAt] = v[off + i];
        minAt = minIndex(val, k);
        min = val[minAt];
      }
    }
    return k;
  }

  /** Index of the smallest of {@code val[0 .. k)}, a NaN counting as the smallest. */
  private static int minIndex(float[] val, int k) {
    int at = 0;
    for (int i = 1; i < k; i++) {
      if (Float.isNaN(val[i]) || (!Float.isNaN(val[at]) && val[i] < val[at])) {
        at = i;
        if (Float.isNaN(val[i])) {
          return at;
        }
      }
    }
    return at;
  }
}
