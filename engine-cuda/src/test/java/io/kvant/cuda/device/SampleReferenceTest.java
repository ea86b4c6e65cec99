package io.kvant.cuda.device;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** The sampling reference on rows small enough to work out by hand. */
class SampleReferenceTest {
  // ids 1 and 2 tie at the maximum; weights at T = 1: 1, 1, e^-2, e^-3, 0 (-inf), NaN never kept
  private static final float[] ROW = {1f, 3f, 3f, 0f, Float.NEGATIVE_INFINITY, Float.NaN};

  @Test
  void argmaxIsTheLowestIdAmongTiesAndNeverNaN() {
    assertThat(SampleReference.argmax(ROW, 0, ROW.length)).isEqualTo(1);
    assertThat(SampleReference.argmax(new float[] {Float.NaN, -1f}, 0, 2)).isEqualTo(1);
  }

  @Test
  void topKKeepsEveryTokenTiedAtItsThreshold() {
    assertThat(SampleReference.keptUpTo(ROW, 0, ROW.length, 1f, 1, 1.0, 0)).isEqualTo(0f);
    assertThat(SampleReference.keptUpTo(ROW, 0, ROW.length, 1f, 3, 1.0, 0)).isEqualTo(2f);
    assertThat(SampleReference.keptUpTo(ROW, 0, ROW.length, 1f, 0, 1.0, 0)).isInfinite();
  }

  @Test
  void topPKeepsTheSmallestPrefixWhoseMassReachesP() {
    // mass 2 + e^-2 + e^-3 = 2.185: 0.5 of it is reached by the tied pair, 0.95 needs id 0 too
    assertThat(SampleReference.keptUpTo(ROW, 0, ROW.length, 1f, 0, 0.5, 0)).isEqualTo(0f);
    assertThat(SampleReference.keptUpTo(ROW, 0, ROW.length, 1f, 0, 0.95, 0)).isEqualTo(2f);
    // top-k 1 first: the pair is all there is, so any p keeps it
    assertThat(SampleReference.keptUpTo(ROW, 0, ROW.length, 1f, 1, 0.999, 0)).isEqualTo(0f);
  }

  @Test
  void minPKeepsTheTokensAtLeastThatShareOfTheMostLikely() {
    // weights relative to the top: 1, 1, e^-2 = 0.135, e^-3 = 0.050
    assertThat(SampleReference.keptUpTo(ROW, 0, ROW.length, 1f, 0, 1.0, 0.1)).isEqualTo(2f);
    assertThat(SampleReference.keptUpTo(ROW, 0, ROW.length, 1f, 0, 1.0, 0.2)).isEqualTo(0f);
    assertThat(SampleReference.keptUpTo(ROW, 0, ROW.length, 1f, 0, 1.0, 0.04)).isEqualTo(3f);
    // after top-p 0.5 (the tied pair), min-p cannot add anything back
    assertThat(SampleReference.keptUpTo(ROW, 0, ROW.length, 1f, 0, 0.5, 0.04)).isEqualTo(0f);
  }

  @Test
  void theDrawWalksTheKeptTokensInIdOrder() {
    assertThat(SampleReference.pick(ROW, 0, ROW.length, 1f, 0f, 0.25)).isEqualTo(1);
    assertThat(SampleReference.pick(ROW, 0, ROW.length, 1f, 0f, 0.75)).isEqualTo(2);
    // everything kept: id 0 holds the first e^-2 / 2.185 = 6.2% of the mass
    assertThat(SampleReference.pick(ROW, 0, ROW.length, 1f, Float.POSITIVE_INFINITY, 0.05))
        .isEqualTo(0);
    assertThat(SampleReference.pick(ROW, 0, ROW.length, 1f, Float.POSITIVE_INFINITY, 0.07))
        .isEqualTo(1);
    // u at the very top lands on the last token with mass (id 3), never on the -inf one
    assertThat(SampleReference.pick(ROW, 0, ROW.length, 1f, Float.POSITIVE_INFINITY, 0.9999999))
        .isEqualTo(3);
  }

  @Test
  void splitMixIsTheStandardGenerator() {
    assertThat(SampleReference.splitmix64(0)).isEqualTo(0xe220a8397b1dcdafL);
  }
}
