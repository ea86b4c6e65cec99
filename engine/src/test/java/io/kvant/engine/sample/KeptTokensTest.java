package io.kvant.engine.sample;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** {@link KeptTokens} against the rule applied to the whole vocabulary, sorted. */
class KeptTokensTest {
  /**
   * The rule on every token, boxed and sorted (as {@link Sampler} first wrote it, top-p since
   * session 22 a share of what top-k kept).
   */
  static int[] reference(double[] p, int topK, float topP, float minP) {
    int n = p.length;
    Integer[] order = new Integer[n];
    for (int i = 0; i < n; i++) {
      order[i] = i;
    }
    Arrays.sort(
        order, (a, b) -> a.equals(b) ? 0 : p[a] != p[b] ? Double.compare(p[b], p[a]) : a - b);
    int keep = n;
    if (topK > 0) {
      keep = Math.min(keep, topK);
    }
    if (topP > 0f && topP < 1f) {
      double target = topP; // of the whole mass, or after top-k of the mass top-k kept
      if (topK > 0 && topK < n) {
        double kept = 0;
        for (int i = 0; i < keep; i++) {
          kept += p[order[i]];
        }
        target = topP * kept;
      }
      double mass = 0;
      for (int i = 0; i < keep; i++) {
        mass += p[order[i]];
        if (mass >= target) {
          keep = i + 1;
          break;
        }
      }
    }
    if (minP > 0f) {
      double floor = minP * p[order[0]];
      int k = 1;
      while (k < keep && p[order[k]] >= floor) {
        k++;
      }
      keep = k;
    }
    int[] kept = new int[keep];
    for (int i = 0; i < keep; i++) {
      kept[i] = order[i];
    }
    return kept;
  }

  @Test
  void topPAfterTopKTakesItsShareOfWhatTopKKept() {
    // top-k 2 keeps 0.5 + 0.3; top-p 0.6 of that is 0.48, which the first token alone reaches
    // (of the whole mass, 0.6 would need both)
    double[] p = {0.1, 0.5, 0.1, 0.3};
    assertThat(KeptTokens.of(p, 2, 0.6f, 0f)).containsExactly(1);
    assertThat(KeptTokens.of(p, 0, 0.6f, 0f)).containsExactly(1, 3);
    assertThat(reference(p, 2, 0.6f, 0f)).containsExactly(1);
  }

  /** Softmax of {@code logits / t} in double, as the sampler computes it. */
  private static double[] probabilities(float[] logits, float t) {
    float max = Float.NEGATIVE_INFINITY;
    for (float v : logits) {
      max = Math.max(max, v);
    }
    double[] p = new double[logits.length];
    double sum = 0;
    for (int i = 0; i < p.length; i++) {
      p[i] = Math.exp((logits[i] - max) * (1f / t));
      sum += p[i];
    }
    for (int i = 0; i < p.length; i++) {
      p[i] /= sum;
    }
    return p;
  }

  private static float[] logits(Random rnd, int n, int shape) {
    float[] l = new float[n];
    for (int i = 0; i < n; i++) {
      l[i] =
          switch (shape) {
            case 0 -> (float) (rnd.nextGaussian() * 3); // broad
            case 1 -> (float) (rnd.nextGaussian() * 0.05); // nearly flat
            case 2 -> (float) Math.round(rnd.nextGaussian() * 2); // many exact ties
            case 3 -> i < 3 ? 20f : (float) rnd.nextGaussian(); // three dominant tokens
            default -> rnd.nextInt(10) == 0 ? Float.NEGATIVE_INFINITY : (float) rnd.nextGaussian();
          };
    }
    return l;
  }

  @Test
  void keepsWhatSortingTheWholeVocabularyKeeps() {
    Random rnd = new Random(11);
    float[] tops = {0f, 1f, 0.05f, 0.5f, 0.9f, 0.95f, 0.999999f, 0.9999999999f};
    int[] ks = {0, 1, 2, 40, 1000, 100_000};
    float[] minPs = {0f, 0.01f, 0.3f, 1f};
    int cases = 0;
    for (int round = 0; round < 600; round++) {
      int n = 1 + rnd.nextInt(round % 10 == 0 ? 40_000 : 3000);
      double[] p = probabilities(logits(rnd, n, round % 5), 0.2f + 2 * rnd.nextFloat());
      int k = ks[rnd.nextInt(ks.length)];
      float top = tops[rnd.nextInt(tops.length)];
      float minP = minPs[rnd.nextInt(minPs.length)];
      if (k == 0 && (top == 0f || top == 1f) && minP == 0f) {
        continue; // no filter: the sampler does not ask
      }
      assertThat(KeptTokens.of(p, k, top, minP))
          .as("n %d, top-k %d, top-p %s, min-p %s, round %d", n, k, top, minP, round)
          .containsExactly(reference(p, k, top, minP));
      cases++;
    }
    assertThat(cases).isGreaterThan(400);
  }

  @Test
  void tiesZerosAndNaNAreOrderedAsDoubleCompareOrdersThem() {
    double[] p = {0.25, 0, 0.25, Double.NaN, 0.1, 0.25, 0, 0.15, Double.NaN};
    for (int k : new int[] {0, 1, 2, 3, 5, 8}) {
      for (float top : new float[] {0f, 0.2f, 0.6f, 0.99f}) {
        for (float minP : new float[] {0f, 0.5f}) {
          if (k == 0 && top == 0f && minP == 0f) {
            continue;
          }
          assertThat(KeptTokens.of(p, k, top, minP))
              .as("top-k %d, top-p %s, min-p %s", k, top, minP)
              .containsExactly(reference(p, k, top, minP));
        }
      }
    }
    // equal probabilities: lower ids first
    assertThat(KeptTokens.of(new double[] {0.2, 0.3, 0.2, 0.3}, 3, 0f, 0f))
        .containsExactly(1, 3, 0);
  }

  @Test
  void aTopPAboveWhatTheBinsCanReachStillKeepsTheReferencePrefix() {
    // Many tiny probabilities under one large one: the running sum reaches top-p only deep in the
    // order, below the bins of their own (2^-64), where every token shares the lowest bin.
    int n = 5000;
    double[] p = new double[n];
    p[7] = 1 - (n - 1) * 1e-25;
    for (int i = 0; i < n; i++) {
      if (i != 7) {
        p[i] = 1e-25 * (1 + (i % 3));
      }
    }
    for (float top : new float[] {0.5f, 0.9999999f}) {
      assertThat(KeptTokens.of(p, 0, top, 0f)).containsExactly(reference(p, 0, top, 0f));
    }
    assertThat(KeptTokens.of(p, 10, 0f, 0f)).containsExactly(reference(p, 10, 0f, 0f));
    assertThat(KeptTokens.of(p, 0, 0f, 1e-30f)).containsExactly(reference(p, 0, 0f, 1e-30f));
  }

  @Test
  void aPrefixWhoseRunningSumFallsShortOfTopPIsReportedForTheFullSort() {
    double[] p = {0.3, 0.3, 0.4};
    // ids 2, 0 are the first two of the order; their sum 0.7 < 0.9 with id 1 left outside
    assertThat(KeptTokens.keep(new int[] {2, 0}, p, 0, 0.9f, 0f, 3)).isNull();
    assertThat(KeptTokens.keep(new int[] {2, 0, 1}, p, 0, 0.9f, 0f, 3)).containsExactly(2, 0, 1);
    assertThat(KeptTokens.keep(new int[] {2, 0}, p, 0, 0.6f, 0f, 3)).containsExactly(2, 0);
    // top-k bounds the prefix: nothing outside it could be kept
    assertThat(KeptTokens.keep(new int[] {2, 0}, p, 2, 0.9f, 0f, 3)).containsExactly(2, 0);
  }
}
