package io.kvant.perf.load;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class StatsTest {
  @Test
  void percentilesInterpolateBetweenClosestRanksLikeNumpy() {
    double[] x = {7, 1, 10, 3, 2, 9, 4, 6, 5, 8}; // 1..10 shuffled
    // rank = p/100 * (n-1): p50 -> 4.5 -> 5.5; p90 -> 8.1 -> 9.1; p99 -> 8.91 -> 9.91
    assertThat(Percentiles.of(x, 50)).isCloseTo(5.5, within(1e-12));
    assertThat(Percentiles.of(x, 90)).isCloseTo(9.1, within(1e-12));
    assertThat(Percentiles.of(x, 99)).isCloseTo(9.91, within(1e-12));
    assertThat(Percentiles.of(x, 0)).isEqualTo(1);
    assertThat(Percentiles.of(x, 100)).isEqualTo(10);
    assertThat(Percentiles.of(new double[] {4}, 99)).isEqualTo(4);
    assertThat(x[0]).as("input untouched").isEqualTo(7);
    assertThatThrownBy(() -> Percentiles.of(new double[0], 50)).hasMessageContaining("no samples");
  }

  @Test
  void latencyStatsOfSmallSample() {
    LatencyStats s = LatencyStats.of(new double[] {10, 20, 30, 40, 100});
    assertThat(s.count()).isEqualTo(5);
    assertThat(s.mean()).isEqualTo(40);
    assertThat(s.median()).isEqualTo(30);
    // p90: rank 3.6 -> 40 + 0.6 * 60 = 76; p99: rank 3.96 -> 40 + 0.96 * 60 = 97.6
    assertThat(s.p90()).isCloseTo(76, within(1e-9));
    assertThat(s.p99()).isCloseTo(97.6, within(1e-9));
    assertThat(s.cdf()).hasSize(101);
    assertThat(s.cdf()[0]).isEqualTo(10);
    assertThat(s.cdf()[100]).isEqualTo(100);
    assertThat(LatencyStats.of(new double[0]).count()).isZero();
  }

  private static RequestRecord ok(int i, double ttft, double e2e, int out) {
    return new RequestRecord(i, i * 10, true, "", ttft, e2e, 10, 4, out, new double[] {1, 2}, "v1");
  }

  @Test
  void summaryCountsThroughputAndGoodputOnlyForSloMeetingRequests() {
    List<RequestRecord> records =
        List.of(
            ok(0, 100, 1000, 10), // tpot = 900/9 = 100
            ok(1, 300, 500, 5), // tpot = 50; ttft misses 200
            ok(2, 150, 410, 14), // tpot = 20; good
            new RequestRecord(3, 30, false, "UNAVAILABLE", -1, 5, 0, 0, 0, new double[0], ""));
    Slo slo = Slo.parse("ttft=200ms,tpot=0.06s");
    assertThat(slo).isEqualTo(new Slo(200, 60, 0));
    Summary s = Summary.of(records, 2.0, slo);
    assertThat(s.completed()).isEqualTo(3);
    assertThat(s.failed()).isEqualTo(1);
    assertThat(s.outputTokens()).isEqualTo(29);
    assertThat(s.promptTokens()).isEqualTo(30);
    assertThat(s.cachedPromptTokens()).isEqualTo(12); // completed requests only
    assertThat(s.requestThroughput()).isEqualTo(1.5);
    assertThat(s.outputTokenThroughput()).isEqualTo(14.5);
    assertThat(s.totalTokenThroughput()).isEqualTo(29.5);
    assertThat(s.ttft().median()).isEqualTo(150);
    assertThat(s.tpot().mean()).isCloseTo((100 + 50 + 20) / 3.0, within(1e-9));
    assertThat(s.e2e().max()).isEqualTo(1000);
    assertThat(s.itl().count()).isEqualTo(6);
    assertThat(s.goodRequests()).isEqualTo(1); // only request 2 meets both
    assertThat(s.goodput()).isEqualTo(0.5);
    assertThat(Summary.of(records, 2.0, Slo.NONE).goodRequests()).isEqualTo(3);
    assertThat(Summary.of(records, 2.0, Slo.parse("e2e=600ms")).goodRequests()).isEqualTo(2);
  }

  @Test
  void sloRejectsUnknownMetrics() {
    assertThatThrownBy(() -> Slo.parse("ttfb=1s")).hasMessageContaining("ttft=D");
  }

  @Test
  void gammaArrivalsHaveTheAskedRateAndBurstiness() {
    for (double b : new double[] {1.0, 0.25, 4.0}) {
      Arrivals a = new Arrivals(50, b, new SplittableRandom(11));
      int n = 40_000;
      double sum = 0;
      double sq = 0;
      for (int i = 0; i < n; i++) {
        double g = a.nextGapSeconds();
        assertThat(g).isGreaterThanOrEqualTo(0);
        sum += g;
        sq += g * g;
      }
      double mean = sum / n;
      double cv = Math.sqrt(sq / n - mean * mean) / mean;
      assertThat(mean).as("mean gap, b=%s", b).isCloseTo(0.02, within(0.0008));
      assertThat(cv)
          .as("coefficient of variation, b=%s", b)
          .isCloseTo(1 / Math.sqrt(b), within(0.06));
    }
    assertThat(new Arrivals(Double.POSITIVE_INFINITY, 1, new SplittableRandom(1)).nextGapSeconds())
        .isZero();
  }

  @Test
  void lengthDistributions() {
    assertThat(LengthDist.parse("fixed:7").sample(new SplittableRandom(1))).isEqualTo(7);
    assertThat(LengthDist.parse("12")).isEqualTo(new LengthDist.Fixed(12));
    LengthDist u = LengthDist.parse("uniform:3:5");
    SplittableRandom r = new SplittableRandom(2);
    for (int i = 0; i < 100; i++) {
      assertThat(u.sample(r)).isBetween(3, 5);
    }
    assertThatThrownBy(() -> LengthDist.parse("normal:3")).hasMessageContaining("uniform:MIN:MAX");
  }
}
