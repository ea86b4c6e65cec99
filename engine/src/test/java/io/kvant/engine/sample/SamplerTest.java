package io.kvant.engine.sample;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

class SamplerTest {
  private static SamplingParams params(float t, int topK, float topP, float minP, long seed) {
    return new SamplingParams(t, topK, topP, minP, 0, 0, 0, seed);
  }

  private static int[] draws(SamplingParams params, float[] logits, int count) {
    Sampler s = new Sampler(params, new int[0]);
    int[] out = new int[count];
    for (int i = 0; i < count; i++) {
      out[i] = s.sample(logits, 0, logits.length);
    }
    return out;
  }

  @Test
  void greedyTakesTheLowestIdAmongEqualMaxima() {
    float[] l = {1f, 3f, -2f, 3f};
    assertThat(draws(SamplingParams.GREEDY, l, 3)).containsOnly(1);
    // the logits are read at an offset and left as they were
    float[] rows = {9f, 9f, 1f, 3f, -2f, 3f};
    assertThat(new Sampler(SamplingParams.GREEDY, new int[0]).sample(rows, 2, 4)).isEqualTo(1);
    assertThat(rows).containsExactly(9f, 9f, 1f, 3f, -2f, 3f);
  }

  @Test
  void topKOfOneTopPBelowTheLargestAndMinPOfOneKeepOnlyTheMostLikely() {
    float[] l = {0.5f, 2f, 1.9f, -1f, 1.95f};
    assertThat(draws(params(1.5f, 1, 0, 0, 3), l, 200)).containsOnly(1);
    assertThat(draws(params(1.5f, 0, 0.05f, 0, 4), l, 200)).containsOnly(1);
    assertThat(draws(params(1.5f, 0, 0, 1f, 5), l, 200)).containsOnly(1);
  }

  @Test
  void filtersKeepTheirNucleusAndDrawInProportion() {
    // probabilities 1/8, 3/8, 4/8 at temperature 1 (ids 0, 1, 2), and a long tail of -inf
    float[] l = new float[1000];
    java.util.Arrays.fill(l, Float.NEGATIVE_INFINITY);
    l[0] = 0f;
    l[1] = (float) Math.log(3);
    l[2] = (float) Math.log(4);
    int[] twoOfThree = draws(params(1f, 2, 0, 0, 9), l, 4000);
    assertThat(twoOfThree).containsOnly(1, 2);
    long ones = java.util.Arrays.stream(twoOfThree).filter(t -> t == 1).count();
    assertThat(ones / 4000.0).isBetween(3 / 7.0 - 0.03, 3 / 7.0 + 0.03);
    // top-p 0.8: 4/8 alone is short of it, 4/8 + 3/8 reaches it
    assertThat(draws(params(1f, 0, 0.8f, 0, 10), l, 2000)).containsOnly(1, 2);
    // min-p 0.3: 1/8 is under 0.3 * 4/8
    assertThat(draws(params(1f, 0, 0, 0.3f, 11), l, 2000)).containsOnly(1, 2);
    // no filter: all three, never the tail
    Set<Integer> seen = new HashSet<>();
    for (int t : draws(params(1f, 0, 0, 0, 12), l, 2000)) {
      seen.add(t);
    }
    assertThat(seen).containsExactlyInAnyOrder(0, 1, 2);
  }

  @Test
  void aSeedGivesTheSameTokensAndAnotherSeedOthers() {
    float[] l = new float[5000];
    java.util.Random rnd = new java.util.Random(2);
    for (int i = 0; i < l.length; i++) {
      l[i] = (float) rnd.nextGaussian();
    }
    SamplingParams p = params(0.9f, 50, 0.9f, 0.01f, 77);
    assertThat(draws(p, l, 64)).containsExactly(draws(p, l, 64));
    assertThat(draws(p.withSeed(78), l, 64)).isNotEqualTo(draws(p, l, 64));
  }

  @Test
  void theRepetitionPenaltyCoversThePromptAndTheOutput() {
    float[] l = {2f, 1.5f, 1.2f};
    SamplingParams rep = new SamplingParams(0, 0, 0, 0, 2f, 0, 0, 0);
    // greedy: token 0 (in the prompt) is penalised to 1.0, so 1 wins; then 1 is penalised too
    Sampler s = new Sampler(rep, new int[] {0});
    assertThat(s.sample(l, 0, 3)).isEqualTo(1);
    assertThat(s.sample(l, 0, 3)).isEqualTo(2);
  }
}
