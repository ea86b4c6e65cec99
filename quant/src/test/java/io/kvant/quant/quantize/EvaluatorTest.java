package io.kvant.quant.quantize;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import org.junit.jupiter.api.Test;

class EvaluatorTest {
  @Test
  void topGapIsLargestMinusSecondLargest() {
    assertThat(Evaluator.topGap(new double[] {0.1, 0.5, 0.05, 0.35}))
        .isCloseTo(0.15, within(1e-12));
    assertThat(Evaluator.topGap(new double[] {0.4, 0.2, 0.4})).isZero();
  }

  @Test
  void disagreementsAreCountedFromTheAgreement() {
    Evaluator.Result r = new Evaluator.Result(200, 0.985, 1e-4, 4, 4, 0.03, 2.0 / 3, 0.995);
    assertThat(r.disagreements()).isEqualTo(3);
  }
}
