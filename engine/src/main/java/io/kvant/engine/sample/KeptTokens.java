package io.kvant.engine.sample;

/**
 * The tokens a filtered draw chooses among, most likely first: of all tokens ordered by probability
 * (descending; equal probabilities by lower token id, as {@link Double#compare} orders them), the
 * prefix that top-k, then top-p, then min-p leave ({@link Sampler}'s rule).
 *
 * <p>Design note: the rule only ever reads a prefix of that order, so the whole vocabulary need not
 * be sorted (sorting 128,256 boxed ids took 32 ms a token, longer than a decode step of a 1B
 * model). One pass files the probabilities into bins by their binary exponent and top three
 * mantissa bits (eight bins per octave, monotone in the probability); walking the bins down from
 * the top finds the lowest bin the prefix can reach (where the count reaches top-k, the mass
 * reaches top-p, or, for min-p, the bin of its floor), and only the tokens at or above it are
 * sorted. Those are a prefix of the full order (a higher bin holds only larger probabilities), so
 * the result is the full sort's, token for token. The one estimate is the bins' mass, summed in
 * another order than the rule's running sum: when the sorted prefix's own sum does not reach top-p
 * (rounding), the whole vocabulary is sorted instead.
 */
final class KeptTokens {
  /** Exponent and top three mantissa bits of a double: bits 49 and up. */
  private static final int KEY_SHIFT = 49;

  /** Octaves below 1 with bins of their own; smaller probabilities share the lowest bin. */
  private static final int OCTAVES = 64;

  private static final int PER_OCTAVE = 8;

  private static final int BINS = (OCTAVES + 1) * PER_OCTAVE;

  /** The key of 2^-OCTAVES: bin 0. */
  private static final int BASE_KEY = (1023 - OCTAVES) * PER_OCTAVE;

  private KeptTokens() {}

  /**
   * The kept token ids, most likely first.
   *
   * @param p probabilities (non-negative, summing to about 1), indexed by token id
   * @param topK keep at most this many; 0 (or at least {@code p.length}) is off
   * @param topP keep the shortest prefix whose running sum reaches this share of the mass (of the
   *     mass top-k kept, when top-k is on); 0 or 1 is off
   * @param minP keep those at least {@code minP} times the largest; 0 is off
   */
  static int[] of(double[] p, int topK, float topP, float minP) {
    int n = p.length;
    boolean byK = topK > 0 && topK < n;
    boolean byP = topP > 0f && topP < 1f;
    int lowest;
    if (byK || byP) {
      int[] count = new int[BINS];
      double[] mass = new double[BINS];
      for (double v : p) {
        int b = bin(v);
        count[b]++;
        mass[b] += v;
      }
      lowest = 0;
      long seen = 0;
      double sum = 0;
      for (int b = BINS - 1; b >= 0; b--) {
        seen += count[b];
        sum += mass[b];
        if (byK ? seen >= topK : sum >= topP) {
          lowest = b;
          break;
        }
      }
    } else {
      int top = 0;
      for (int i = 1; i < n; i++) {
        if (Double.compare(p[i], p[top]) > 0) {
          top = i;
        }
      }
      lowest = bin(minP * p[top]);
    }
    int[] kept = keep(sorted(p, lowest), p, topK, topP, minP, n);
    if (kept == null) {
      kept = keep(sorted(p, 0), p, topK, topP, minP, n);
    }
    return kept;
  }

  /**
   * The rule applied to {@code order}, a prefix of the full order; null when top-p's running sum
   * does not reach it within that prefix while tokens are left outside it.
   */
  static int[] keep(int[] order, double[] p, int topK, float topP, float minP, int n) {
    int keep = n;
    if (topK > 0) {
      keep = Math.min(keep, topK);
    }
    if (topP > 0f && topP < 1f) {
      // After top-k, top-p takes its share of what top-k kept (renormalised, as Hugging Face's
      // warpers, vLLM and llama.cpp do, and the CUDA kernel); the top-k tokens are all in order
      // (the first pass binned by count).
      double target = topP;
      if (topK > 0 && topK < n) {
        double kept = 0;
        for (int i = 0; i < Math.min(keep, order.length); i++) {
          kept += p[order[i]];
        }
        target = topP * kept;
      }
      double mass = 0;
      boolean reached = false;
      for (int i = 0; i < Math.min(keep, order.length); i++) {
        mass += p[order[i]];
        if (mass >= target) {
          keep = i + 1;
          reached = true;
          break;
        }
      }
      if (!reached && order.length < keep) {
        return null;
      }
    }
    keep = Math.min(keep, order.length);
    if (minP > 0f) {
      double floor = minP * p[order[0]];
      int k = 1;
      while (k < keep && p[order[k]] >= floor) {
        k++;
      }
      keep = k;
    }
    return java.util.Arrays.copyOf(order, keep);
  }

  /** The tokens in bins {@code lowest} and up, most likely first (ties: lower id first). */
  private static int[] sorted(double[] p, int lowest) {
    int c = 0;
    for (double v : p) {
      if (bin(v) >= lowest) {
        c++;
      }
    }
    int[] ids = new int[c];
    int j = 0;
    for (int i = 0; i < p.length; i++) {
      if (bin(p[i]) >= lowest) {
        ids[j++] = i;
      }
    }
    mergeSort(ids, new int[c], 0, c, p);
    return ids;
  }

  /** Stable: ids in ascending order stay so among equal probabilities. */
  private static void mergeSort(int[] ids, int[] tmp, int from, int to, double[] p) {
    if (to - from < 2) {
      return;
    }
    int mid = (from + to) >>> 1;
    mergeSort(ids, tmp, from, mid, p);
    mergeSort(ids, tmp, mid, to, p);
    if (Double.compare(p[ids[mid - 1]], p[ids[mid]]) >= 0) {
      return; // already in order
    }
    System.arraycopy(ids, from, tmp, from, to - from);
    int a = from;
    int b = mid;
    for (int k = from; k < to; k++) {
      if (b >= to || (a < mid && Double.compare(p[tmp[a]], p[tmp[b]]) >= 0)) {
        ids[k] = tmp[a++];
      } else {
        ids[k] = tmp[b++];
      }
    }
  }

  /** Monotone in {@code v} as {@link Double#compare} orders non-negative values and NaN. */
  private static int bin(double v) {
    long key = Double.doubleToRawLongBits(v) >>> KEY_SHIFT;
    return (int) Math.max(0, Math.min(BINS - 1, key - BASE_KEY));
  }
}
