package io.kvant.perf.sim;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import io.kvant.perf.load.RequestRecord;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class SchedulerSimTest {
  /** 10 ms per step plus 1 ms per token: easy to compute by hand. */
  private static final CostModel COST = new CostModel(0, 0, 5e5, 1e9, 1e9, 0.010);

  @Test
  void singleRequestPrefillThenDecodeByHand() {
    SchedulerSim sim = new SchedulerSim(new SchedulerSim.Config(64, 8, 64, 16, true), COST);
    SchedulerSim.Result r = sim.run(Trace.parse(List.of("arrival_s,prompt,output", "0.5,40,3")));
    RequestRecord q = r.records().getFirst();
    // step 1: 40 prefill tokens = 10 + 40 ms -> first token at 50 ms; 2 decode steps of 11 ms.
    assertThat(q.ttftMs()).isCloseTo(50, within(1e-6));
    assertThat(q.e2eMs()).isCloseTo(72, within(1e-6));
    assertThat(q.outputTokens()).isEqualTo(3);
    assertThat(q.itlMs()).hasSize(2);
    assertThat(q.itlMs()[0]).isCloseTo(11, within(1e-9));
    assertThat(q.itlMs()[1]).isCloseTo(11, within(1e-9));
    assertThat(r.steps()).isEqualTo(3);
  }

  @Test
  void chunkedPrefillSplitsLongPromptsOverSteps() {
    SchedulerSim sim = new SchedulerSim(new SchedulerSim.Config(16, 8, 64, 16, true), COST);
    SchedulerSim.Result r = sim.run(Trace.parse(List.of("0,40,1")));
    // 16 + 16 + 8 tokens: 26 + 26 + 18 ms.
    assertThat(r.records().getFirst().ttftMs()).isCloseTo(70, within(1e-6));
  }

  @Test
  void sharedPrefixesHitTheCacheAndTightCachePreempts() {
    List<String> lines = new ArrayList<>();
    for (int i = 0; i < 20; i++) {
      lines.add((i * 0.05) + ",100,20,sys,64");
    }
    SchedulerSim.Result cached =
        new SchedulerSim(new SchedulerSim.Config(256, 16, 400, 16, true), COST)
            .run(Trace.parse(lines));
    assertThat(cached.records())
        .hasSize(20)
        .allSatisfy(q -> assertThat(q.outputTokens()).isEqualTo(20));
    assertThat(cached.prefixHitRatio()).isGreaterThan(0.4);
    SchedulerSim.Result uncached =
        new SchedulerSim(new SchedulerSim.Config(256, 16, 400, 16, false), COST)
            .run(Trace.parse(lines));
    assertThat(uncached.prefixHitRatio()).isZero();

    List<String> burst = new ArrayList<>();
    for (int i = 0; i < 12; i++) {
      burst.add("0,60,60");
    }
    SchedulerSim.Result tight =
        new SchedulerSim(new SchedulerSim.Config(512, 12, 24, 16, false), COST)
            .run(Trace.parse(burst));
    assertThat(tight.records())
        .hasSize(12)
        .allSatisfy(q -> assertThat(q.outputTokens()).isEqualTo(60));
    assertThat(tight.preemptions()).isPositive();
    assertThat(tight.peakKvUsage()).isLessThanOrEqualTo(1.0);
  }

  /**
   * Two sequences at most: the two requests that arrive first run, and the shorter one frees its
   * slot first; of the two that wait, the one that arrived later but has the lower priority value
   * takes it, as in the server.
   */
  @Test
  void aTracesPriorityColumnOrdersTheWaitingRequests() {
    SchedulerSim sim = new SchedulerSim(new SchedulerSim.Config(64, 2, 64, 16, true), COST);
    SchedulerSim.Result r =
        sim.run(Trace.parse(List.of("0,8,2", "0,8,8", "0.001,8,4,,0,5", "0.002,8,4,,0,-1")));
    List<RequestRecord> recs = r.records();
    double startLow = recs.get(2).startMs() + recs.get(2).ttftMs();
    double startHigh = recs.get(3).startMs() + recs.get(3).ttftMs();
    assertThat(startHigh).isLessThan(startLow);
    // the same trace without priorities serves them in arrival order
    SchedulerSim.Result fifo =
        sim.run(Trace.parse(List.of("0,8,2", "0,8,8", "0.001,8,4", "0.002,8,4")));
    List<RequestRecord> f = fifo.records();
    assertThat(f.get(2).startMs() + f.get(2).ttftMs())
        .isLessThan(f.get(3).startMs() + f.get(3).ttftMs());
  }

  @Test
  void badTracesAreRejected() {
    assertThatThrownBy(() -> Trace.parse(List.of("0,10"))).hasMessageContaining("line 1");
    assertThatThrownBy(() -> Trace.parse(List.of("0,10,1,g,2,high")))
        .hasMessageContaining("line 1");
    assertThatThrownBy(
            () ->
                new SchedulerSim(new SchedulerSim.Config(64, 8, 2, 16, true), COST)
                    .run(Trace.parse(List.of("0,40,10"))))
        .hasMessageContaining("more blocks");
  }
}
