package io.kvant.engine.sched;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kvant.engine.kv.EvictionPolicyKind;
import io.kvant.engine.kv.KvCacheConfig;
import io.kvant.engine.kv.KvCacheManager;
import io.kvant.engine.kv.KvCacheType;
import io.kvant.engine.kv.KvGeometry;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The scheduler without a model, as the simulator drives it: the real policy, step by step. */
class SchedulerHarnessTest {
  static final KvGeometry TINY = new KvGeometry(1, 1, 2);

  static KvCacheManager blocks(int n, boolean prefixCaching) {
    long perBlock =
        new KvCacheConfig(KvCacheType.F32, 4, 1, EvictionPolicyKind.LRU, false).bytesPerBlock(TINY);
    return new KvCacheManager(
        TINY,
        new KvCacheConfig(KvCacheType.F32, 4, n * perBlock, EvictionPolicyKind.LRU, prefixCaching));
  }

  static int[] prompt(int base, int n) {
    int[] t = new int[n];
    for (int i = 0; i < n; i++) {
      t[i] = base + i;
    }
    return t;
  }

  @Test
  void aLaterHigherPriorityRequestIsAdmittedFirst() {
    SchedulerHarness h =
        new SchedulerHarness(new SchedulerConfig(64, 1, 10), blocks(16, false), "v");
    h.add(0, prompt(100, 6), 2, 5);
    h.add(1, prompt(200, 6), 2, 0);
    assertThat(h.step()).containsExactly(new SchedulerHarness.Scheduled(1, 0, 6, true));
    h.append(1, 7);
    assertThat(h.step()).containsExactly(new SchedulerHarness.Scheduled(1, 6, 1, true));
    h.finish(1);
    assertThat(h.step()).containsExactly(new SchedulerHarness.Scheduled(0, 0, 6, true));
    h.checkInvariants();
  }

  @Test
  void chunkedPrefillUnderTheBudgetAndPreemptionWhenBlocksRunOut() {
    // Budget 8: a 12-token prompt takes two steps.
    SchedulerHarness h =
        new SchedulerHarness(new SchedulerConfig(8, 4, 10), blocks(16, false), "v");
    h.add(0, prompt(100, 12), 4, 0);
    assertThat(h.step()).containsExactly(new SchedulerHarness.Scheduled(0, 0, 8, false));
    assertThat(h.step()).containsExactly(new SchedulerHarness.Scheduled(0, 8, 4, true));
    h.finish(0);

    // 4 blocks of 4 tokens: two requests of 7 tokens fit, then growing both does not.
    SchedulerHarness tight =
        new SchedulerHarness(new SchedulerConfig(64, 4, 10), blocks(4, false), "v");
    tight.add(0, prompt(100, 7), 8, 0);
    tight.add(1, prompt(200, 7), 8, 0);
    List<SchedulerHarness.Scheduled> first = tight.step();
    assertThat(first).hasSize(2);
    for (int token = 0; token < 3 && tight.preemptions() == 0; token++) {
      for (SchedulerHarness.Scheduled s : first) {
        tight.append(s.request(), 50 + token);
      }
      first = tight.step();
      tight.checkInvariants();
    }
    // The latest admitted request was preempted to let the first one grow.
    assertThat(tight.preemptions()).isPositive();
    assertThat(first).extracting(SchedulerHarness.Scheduled::request).containsExactly(0);
    assertThat(tight.waiting()).isEqualTo(1);
  }

  @Test
  void unknownAndDuplicateRequestsAreRefused() {
    SchedulerHarness h = new SchedulerHarness(new SchedulerConfig(8, 4, 10), blocks(8, true), "v");
    h.add(0, prompt(1, 3), 1, 0);
    assertThatThrownBy(() -> h.add(0, prompt(1, 3), 1, 0)).hasMessageContaining("already added");
    assertThatThrownBy(() -> h.append(9, 1)).hasMessageContaining("no request 9");
  }
}
