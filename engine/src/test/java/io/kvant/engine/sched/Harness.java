package io.kvant.engine.sched;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.engine.generate.FinishReason;
import io.kvant.engine.kv.EvictionPolicyKind;
import io.kvant.engine.kv.KvCacheConfig;
import io.kvant.engine.kv.KvCacheManager;
import io.kvant.engine.kv.KvCacheType;
import io.kvant.engine.sample.SamplingParams;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;

/** Test plumbing: a settable clock, a recording sink, engine construction and invariants. */
final class Harness {
  private Harness() {}

  /** A clock tests move by hand. */
  static final class TestClock extends Clock {
    Instant now = Instant.parse("2026-01-01T00:00:00Z");

    void advance(Duration d) {
      now = now.plus(d);
    }

    @Override
    public ZoneOffset getZone() {
      return ZoneOffset.UTC;
    }

    @Override
    public Clock withZone(java.time.ZoneId zone) {
      return this;
    }

    @Override
    public Instant instant() {
      return now;
    }
  }

  /** Records everything a request emits and checks the sink protocol. */
  static class Recorder implements RequestSink {
    final List<Integer> tokens = new ArrayList<>();
    final StringBuilder text = new StringBuilder();
    final List<TokenLogprob> logprobs = new ArrayList<>();
    final java.util.Set<String> deltaVersions = new java.util.LinkedHashSet<>();
    volatile RequestFinal result;
    int finals;

    @Override
    public synchronized void onDelta(RequestDelta d) {
      assertThat(result).as("delta after final").isNull();
      for (int t : d.tokenIds()) {
        tokens.add(t);
      }
      text.append(d.text());
      logprobs.addAll(d.logprobs());
      deltaVersions.add(d.modelVersion());
    }

    @Override
    public synchronized void onFinish(RequestFinal r) {
      finals++;
      result = r;
    }

    Outcome outcome() {
      return new Outcome(List.copyOf(tokens), text.toString(), result.finishReason());
    }
  }

  record Outcome(List<Integer> tokens, String text, FinishReason reason) {}

  static EngineLoop engine(
      int blocks, int blockSize, int budget, int maxSeqs, int maxWaiting, Clock clock) {
    long bytes = (long) blocks * blockSize * FakeModel.GEOMETRY.bytesPerToken(KvCacheType.F32);
    KvCacheManager kv =
        new KvCacheManager(
            FakeModel.GEOMETRY,
            new KvCacheConfig(
                KvCacheType.F32, blockSize, bytes, EvictionPolicyKind.TINY_LFU, true));
    return new EngineLoop(new SchedulerConfig(budget, maxSeqs, maxWaiting), kv, clock);
  }

  static GenerationRequest request(
      String id, ServingModel model, int[] prompt, int maxTokens, Recorder sink) {
    return request(id, model, prompt, maxTokens, SamplingParams.GREEDY, List.of(), 0, null, sink);
  }

  static GenerationRequest request(
      String id,
      ServingModel model,
      int[] prompt,
      int maxTokens,
      SamplingParams sampling,
      List<String> stops,
      int priority,
      Instant deadline,
      Recorder sink) {
    return new GenerationRequest(
        id, model, prompt, maxTokens, sampling, stops, 0, priority, deadline, sink);
  }

  /** Steps until idle (bounded), checking invariants after every step. */
  static int runToIdle(EngineLoop loop, int maxSteps) {
    int steps = 0;
    while (!loop.idle()) {
      loop.step();
      loop.checkInvariants();
      assertThat(++steps).as("steps until idle").isLessThan(maxSteps);
    }
    return steps;
  }

  /** The state after a scenario: nothing queued or running, every block free, refs consistent. */
  static void assertQuiescent(EngineLoop loop) {
    loop.step();
    loop.checkInvariants();
    assertThat(loop.idle()).isTrue();
    assertThat(loop.kvCache().freeBlocks()).isEqualTo(loop.kvCache().totalBlocks());
    assertThat(loop.kvCache().stats().sequences()).isZero();
    assertThat(loop.stats().waiting()).isZero();
    assertThat(loop.stats().running()).isZero();
  }
}
