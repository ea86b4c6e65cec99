package io.kvant.engine.sched;

import static io.kvant.engine.sched.Harness.assertQuiescent;
import static io.kvant.engine.sched.Harness.engine;
import static io.kvant.engine.sched.Harness.request;
import static io.kvant.engine.sched.Harness.runToIdle;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kvant.engine.generate.FinishReason;
import io.kvant.engine.sample.SamplingParams;
import io.kvant.engine.sched.Harness.Outcome;
import io.kvant.engine.sched.Harness.Recorder;
import io.kvant.engine.sched.Harness.TestClock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class EngineLoopTest {
  private final TestClock clock = new TestClock();
  private final FakeModel v1 = new FakeModel("v1", 1, 256);

  /** One generated workload: prompts sharing system prefixes, mixed lengths, stops, sampling. */
  record Spec(
      String id, int[] prompt, int maxTokens, SamplingParams sampling, List<String> stops) {}

  private static List<Spec> workload(long seed, int n) {
    SplittableRandom r = new SplittableRandom(seed);
    int[][] system = new int[4][];
    for (int p = 0; p < system.length; p++) {
      system[p] = new int[10 + r.nextInt(30)];
      for (int i = 0; i < system[p].length; i++) {
        system[p][i] = 1 + r.nextInt(FakeModel.VOCAB - 1);
      }
    }
    List<Spec> out = new ArrayList<>();
    for (int q = 0; q < n; q++) {
      int[] sys = system[r.nextInt(system.length)];
      int[] prompt = new int[sys.length + 1 + r.nextInt(12)];
      System.arraycopy(sys, 0, prompt, 0, sys.length);
      for (int i = sys.length; i < prompt.length; i++) {
        prompt[i] = 1 + r.nextInt(FakeModel.VOCAB - 1);
      }
      SamplingParams sp =
          q % 3 == 0
              ? new SamplingParams(0.8f, 10, 0.9f, 0, 0, 0, 0, 1000 + q)
              : SamplingParams.GREEDY;
      List<String> stops = q % 4 == 0 ? List.of("ab", "zz") : List.of();
      out.add(new Spec("r" + q, prompt, 4 + r.nextInt(36), sp, stops));
    }
    return out;
  }

  private GenerationRequest toRequest(Spec s, Recorder sink) {
    return request(s.id(), v1, s.prompt(), s.maxTokens(), s.sampling(), s.stops(), 0, null, sink);
  }

  private Map<String, Outcome> solo(List<Spec> specs) {
    Map<String, Outcome> out = new HashMap<>();
    for (Spec s : specs) {
      EngineLoop loop = engine(64, 4, 1024, 1, 1, clock);
      Recorder rec = new Recorder();
      loop.submit(toRequest(s, rec));
      runToIdle(loop, 200);
      assertThat(rec.finals).isEqualTo(1);
      out.put(s.id(), rec.outcome());
      assertQuiescent(loop);
    }
    return out;
  }

  @Test
  void continuousBatchingWithChunkingPreemptionAndPrefixHitsMatchesSoloRuns() {
    List<Spec> specs = workload(5, 30);
    Map<String, Outcome> alone = solo(specs);
    // 30 blocks of 4 tokens, a 24-token budget, 6 sequences: chunked prefill and preemption
    EngineLoop loop = engine(30, 4, 24, 6, 100, clock);
    SplittableRandom r = new SplittableRandom(9);
    Map<String, Recorder> sinks = new HashMap<>();
    int next = 0;
    for (int step = 0; step < 2000 && (next < specs.size() || !loop.idle()); step++) {
      while (next < specs.size() && r.nextInt(3) == 0) {
        Recorder rec = new Recorder();
        sinks.put(specs.get(next).id(), rec);
        loop.submit(toRequest(specs.get(next++), rec));
      }
      loop.step();
      loop.checkInvariants();
    }
    assertThat(next).isEqualTo(specs.size());
    for (Spec s : specs) {
      Recorder rec = sinks.get(s.id());
      assertThat(rec.finals).as(s.id()).isEqualTo(1);
      assertThat(rec.outcome()).as(s.id()).isEqualTo(alone.get(s.id()));
      assertThat(rec.result.completionTokens()).isEqualTo(rec.tokens.size());
      assertThat(rec.result.modelVersion()).isEqualTo("v1");
    }
    SchedulerStats st = loop.stats();
    assertThat(st.preemptions()).as("preemptions").isPositive();
    assertThat(st.prefixHitRatio()).as("prefix hits").isPositive();
    assertThat(sinks.values().stream().mapToInt(s -> s.result.cachedPromptTokens()).sum())
        .isPositive();
    assertThat(st.finished()).isEqualTo(specs.size());
    assertQuiescent(loop);
  }

  @Test
  void preemptionStormWithACacheFarTooSmall() {
    List<Spec> specs = workload(77, 20);
    Map<String, Outcome> alone = solo(specs);
    EngineLoop loop = engine(20, 4, 64, 20, 100, clock); // 80 tokens for 20 requests
    Map<String, Recorder> sinks = new HashMap<>();
    for (Spec s : specs) {
      Recorder rec = new Recorder();
      sinks.put(s.id(), rec);
      loop.submit(toRequest(s, rec));
    }
    runToIdle(loop, 5000);
    for (Spec s : specs) {
      assertThat(sinks.get(s.id()).outcome()).as(s.id()).isEqualTo(alone.get(s.id()));
    }
    // The count follows the sampled lengths: over 10 until session 22's top-p-after-top-k rule
    // changed the sampled requests' tokens, 10 since. Ten preemptions among 20 requests, each
    // still matching its solo run, is the storm this test is about.
    assertThat(loop.stats().preemptions()).isGreaterThanOrEqualTo(10);
    assertQuiescent(loop);
  }

  @Test
  void cancelStormFreesEverything() {
    List<Spec> specs = workload(123, 60);
    EngineLoop loop = engine(40, 4, 32, 8, 100, clock);
    SplittableRandom r = new SplittableRandom(4);
    Map<String, Recorder> sinks = new HashMap<>();
    List<String> aborted = new ArrayList<>();
    int next = 0;
    for (int step = 0; step < 3000 && (next < specs.size() || !loop.idle()); step++) {
      while (next < specs.size() && r.nextInt(2) == 0) {
        Recorder rec = new Recorder();
        sinks.put(specs.get(next).id(), rec);
        loop.submit(toRequest(specs.get(next++), rec));
      }
      for (int k = 0; k < 3 && next > 0; k++) {
        if (r.nextInt(4) == 0) {
          String id = specs.get(r.nextInt(next)).id();
          loop.abort(id);
          aborted.add(id);
        }
      }
      loop.step();
      loop.checkInvariants();
    }
    loop.abort("no-such-request");
    assertQuiescent(loop);
    int cancelled = 0;
    for (Recorder rec : sinks.values()) {
      assertThat(rec.finals).isEqualTo(1);
      if (rec.result.finishReason() == FinishReason.CANCELLED) {
        cancelled++;
        assertThat(aborted).contains(rec.result.requestId());
      }
    }
    assertThat(cancelled).isGreaterThan(10);
  }

  @Test
  void prioritiesGoFirstAndFcfsWithinAPriority() {
    EngineLoop loop = engine(64, 4, 64, 1, 10, clock);
    List<String> order = new ArrayList<>();
    String[] ids = {"low", "high1", "high2", "mid"};
    int[] prio = {5, 0, 0, 2};
    for (int i = 0; i < ids.length; i++) {
      String id = ids[i];
      Recorder rec =
          new Recorder() {
            @Override
            public synchronized void onFinish(RequestFinal r) {
              super.onFinish(r);
              order.add(id);
            }
          };
      loop.submit(
          request(
              id,
              v1,
              new int[] {3, 4, 5},
              3,
              SamplingParams.GREEDY,
              List.of(),
              prio[i],
              null,
              rec));
    }
    runToIdle(loop, 100);
    assertThat(order).containsExactly("high1", "high2", "mid", "low");
    assertQuiescent(loop);
  }

  @Test
  void preemptionPicksTheLowestPriorityLatestRequest() {
    // 8 blocks of 4 tokens: three requests of 9-token prompts that each grow to 9 blocks' worth
    EngineLoop loop = engine(8, 4, 64, 3, 10, clock);
    FakeModel noEos =
        new FakeModel("v1", 1, 256) {
          @Override
          public int eosToken() {
            return -1;
          }
        };
    int[] prompt = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    Map<String, Recorder> sinks = new HashMap<>();
    String[] ids = {"a", "b", "c"};
    int[] prio = {0, 1, 0};
    for (int i = 0; i < 3; i++) {
      Recorder rec = new Recorder();
      sinks.put(ids[i], rec);
      int[] p = prompt.clone();
      p[8] = 10 + i;
      loop.submit(
          request(ids[i], noEos, p, 20, SamplingParams.GREEDY, List.of(), prio[i], null, rec));
    }
    Map<String, Integer> preemptedAt = new HashMap<>();
    for (int step = 0; step < 400 && !loop.idle(); step++) {
      loop.step();
      loop.checkInvariants();
      for (Sequence s : loop.scheduler().waitingSnapshot()) {
        if (s.preemptions > 0) {
          preemptedAt.putIfAbsent(s.id(), step);
        }
      }
    }
    assertThat(preemptedAt).containsKey("b");
    assertThat(preemptedAt.getOrDefault("c", Integer.MAX_VALUE))
        .isGreaterThan(preemptedAt.get("b"));
    assertThat(preemptedAt).doesNotContainKey("a");
    assertThat(sinks.values()).allSatisfy(r -> assertThat(r.tokens).hasSize(20));
    assertQuiescent(loop);
  }

  @Test
  void admissionControlRefusesWhatCanNeverRunAndBoundsTheQueue() {
    EngineLoop loop = engine(8, 4, 64, 2, 2, clock); // 32 tokens of cache, context 256
    Recorder rec = new Recorder();
    assertThatThrownBy(() -> loop.submit(request("x", v1, new int[0], 4, rec)))
        .isInstanceOfSatisfying(
            RejectedException.class, e -> assertThat(e.field()).isEqualTo("prompt"));
    assertThatThrownBy(() -> loop.submit(request("x", v1, new int[] {1, 99}, 4, rec)))
        .isInstanceOfSatisfying(
            RejectedException.class, e -> assertThat(e.field()).isEqualTo("prompt"));
    assertThatThrownBy(() -> loop.submit(request("x", v1, new int[] {1}, 0, rec)))
        .isInstanceOfSatisfying(
            RejectedException.class, e -> assertThat(e.field()).isEqualTo("max_tokens"));
    assertThatThrownBy(() -> loop.submit(request("x", v1, new int[300], 1, rec)))
        .isInstanceOfSatisfying(
            RejectedException.class, e -> assertThat(e.field()).isEqualTo("prompt"));
    assertThatThrownBy(() -> loop.submit(request("x", v1, new int[200], 100, rec)))
        .isInstanceOfSatisfying(
            RejectedException.class,
            e -> {
              assertThat(e.field()).isEqualTo("max_tokens");
              assertThat(e.getMessage()).contains("context window");
            });
    assertThatThrownBy(() -> loop.submit(request("x", v1, new int[20], 20, rec)))
        .isInstanceOfSatisfying(
            RejectedException.class,
            e -> {
              assertThat(e.reason()).isEqualTo(RejectedException.Reason.INVALID);
              assertThat(e.getMessage()).contains("whole KV cache");
            });
    loop.submit(request("q1", v1, new int[] {1}, 4, new Recorder()));
    assertThatThrownBy(() -> loop.submit(request("q1", v1, new int[] {1}, 4, rec)))
        .isInstanceOfSatisfying(
            RejectedException.class, e -> assertThat(e.field()).isEqualTo("request_id"));
    loop.submit(request("q2", v1, new int[] {1}, 4, new Recorder()));
    assertThatThrownBy(() -> loop.submit(request("q3", v1, new int[] {1}, 4, rec)))
        .isInstanceOfSatisfying(
            RejectedException.class,
            e -> assertThat(e.reason()).isEqualTo(RejectedException.Reason.QUEUE_FULL));
    loop.step(); // both start running: the queue has room again
    loop.submit(request("q3", v1, new int[] {1}, 4, new Recorder()));
    loop.shutdown();
    assertThatThrownBy(() -> loop.submit(request("q4", v1, new int[] {1}, 4, rec)))
        .isInstanceOfSatisfying(
            RejectedException.class,
            e -> assertThat(e.reason()).isEqualTo(RejectedException.Reason.SHUTTING_DOWN));
    runToIdle(loop, 100);
    assertThat(rec.finals).isZero();
    assertQuiescent(loop);
  }

  @Test
  void deadlinesExpireBetweenSteps() {
    EngineLoop loop = engine(64, 4, 64, 4, 10, clock);
    Recorder late = new Recorder();
    Recorder fine = new Recorder();
    loop.submit(
        request(
            "late",
            v1,
            new int[] {1, 2, 3},
            200,
            SamplingParams.GREEDY,
            List.of("\u0000"),
            0,
            clock.now.plusSeconds(1),
            late));
    loop.submit(request("fine", v1, new int[] {1, 2, 3}, 5, fine));
    loop.step();
    loop.step();
    clock.advance(Duration.ofSeconds(2));
    loop.step();
    assertThat(late.result.finishReason()).isEqualTo(FinishReason.CANCELLED);
    assertThat(late.result.error()).contains("deadline");
    runToIdle(loop, 100);
    assertThat(fine.result.finishReason()).isNotEqualTo(FinishReason.CANCELLED);
    assertQuiescent(loop);
  }

  /**
   * Issue 17, item 10: an IMMEDIATE swap moves only requests that have computed nothing; one that
   * is already running finishes on its version, so every delta and the final result of a response
   * name one version (before, the running request moved too and its response named two).
   */
  @Test
  void immediateMigrationMovesOnlyRequestsThatHaveNotStarted() {
    FakeModel v2 = new FakeModel("v2", 2, 256);
    EngineLoop loop = engine(64, 4, 64, 1, 10, clock);
    Recorder running = new Recorder();
    Recorder queued = new Recorder();
    loop.submit(request("running", v1, new int[] {5, 6, 7}, 12, running));
    loop.submit(request("queued", v1, new int[] {8, 9, 10}, 12, queued));
    loop.step();
    loop.step();
    assertThat(running.tokens).isNotEmpty();
    assertThat(queued.tokens).isEmpty();
    loop.migrate(v1, v2);
    runToIdle(loop, 200);
    assertThat(running.result.modelVersion()).isEqualTo("v1");
    assertThat(running.deltaVersions).containsExactly("v1");
    assertThat(queued.result.modelVersion()).isEqualTo("v2");
    assertThat(queued.deltaVersions).containsExactly("v2");
    assertThat(v2.forwards.get()).isPositive();
    assertQuiescent(loop);
  }

  @Test
  void versionsRunAsSeparateGroupsAndNeverShareKv() {
    FakeModel v2 = new FakeModel("v2", 2, 256);
    EngineLoop loop = engine(64, 4, 64, 8, 10, clock);
    int[] prompt = {5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
    Recorder a = new Recorder();
    loop.submit(request("a", v1, prompt, 3, a));
    runToIdle(loop, 50);
    Recorder b = new Recorder();
    Recorder c = new Recorder();
    loop.submit(request("b", v2, prompt, 3, b));
    loop.submit(request("c", v1, prompt, 3, c));
    int before1 = v1.forwards.get();
    loop.step();
    assertThat(v1.forwards.get()).isEqualTo(before1 + 1);
    assertThat(v2.forwards.get()).isEqualTo(1);
    runToIdle(loop, 50);
    assertThat(b.result.cachedPromptTokens()).isZero();
    assertThat(b.result.modelVersion()).isEqualTo("v2");
    assertThat(c.result.cachedPromptTokens()).isEqualTo(8);
    assertThat(a.result.finishReason()).isNotEqualTo(FinishReason.ERROR);
    assertThat(b.result.finishReason()).isNotEqualTo(FinishReason.ERROR);
    assertThat(c.outcome()).isEqualTo(a.outcome());
    assertQuiescent(loop);
  }

  @Test
  void stopSequencesAreNeverEmittedAndLogprobsAreReported() {
    EngineLoop loop = engine(64, 4, 64, 8, 10, clock);
    Recorder free = new Recorder();
    loop.submit(request("free", v1, new int[] {1, 2}, 60, free));
    runToIdle(loop, 100);
    String text = free.text.toString();
    assertThat(text.length()).isGreaterThan(4);
    String stop = text.substring(2, 4);
    Recorder stopped = new Recorder();
    loop.submit(
        request(
            "stopped",
            v1,
            new int[] {1, 2},
            60,
            SamplingParams.GREEDY,
            List.of(stop),
            0,
            null,
            stopped));
    Recorder lp = new Recorder();
    loop.submit(
        new GenerationRequest(
            "lp", v1, new int[] {1, 2}, 5, SamplingParams.GREEDY, List.of(), 3, 0, null, lp));
    runToIdle(loop, 100);
    assertThat(stopped.result.finishReason()).isEqualTo(FinishReason.STOP);
    assertThat(stopped.text.toString()).isEqualTo(text.substring(0, text.indexOf(stop)));
    assertThat(lp.logprobs).hasSize(lp.tokens.size());
    for (int i = 0; i < lp.logprobs.size(); i++) {
      TokenLogprob l = lp.logprobs.get(i);
      assertThat(l.tokenId()).isEqualTo(lp.tokens.get(i));
      assertThat(l.topIds()).hasSize(3);
      assertThat(l.topIds()[0]).isEqualTo(l.tokenId()); // greedy picks the most likely
      assertThat(l.topLogprobs()[0]).isGreaterThanOrEqualTo(l.topLogprobs()[1]);
      assertThat(l.logprob()).isLessThanOrEqualTo(0f);
    }
    assertQuiescent(loop);
  }

  @Test
  void aFailingSinkOrForwardPassEndsOnlyItsRequests() {
    EngineLoop loop = engine(64, 4, 64, 8, 10, clock);
    Recorder ok = new Recorder();
    Recorder bad =
        new Recorder() {
          @Override
          public synchronized void onDelta(RequestDelta d) {
            throw new IllegalStateException("client gone");
          }
        };
    loop.submit(request("bad", v1, new int[] {1, 2}, 10, bad));
    loop.submit(request("ok", v1, new int[] {1, 3}, 10, ok));
    runToIdle(loop, 100);
    assertThat(bad.result.finishReason()).isEqualTo(FinishReason.ERROR);
    assertThat(ok.result.finishReason()).isNotEqualTo(FinishReason.ERROR);
    ServingModel broken =
        new FakeModel("v9", 9, 256) {
          @Override
          public ModelExecutor executor() {
            return (batch, kv) -> {
              throw new IllegalStateException("boom");
            };
          }
        };
    Recorder err = new Recorder();
    loop.submit(request("err", broken, new int[] {1}, 3, err));
    runToIdle(loop, 10);
    assertThat(err.result.finishReason()).isEqualTo(FinishReason.ERROR);
    assertThat(err.result.error()).contains("boom");
    assertQuiescent(loop);
  }

  @Test
  void minPIsDrawnOnTheDeviceAndPenaltiesOnTheHost() {
    EngineLoop loop = engine(64, 4, 64, 8, 10, clock);
    List<io.kvant.engine.forward.DeviceSampling> rules = new ArrayList<>();
    java.util.concurrent.atomic.AtomicInteger hostSteps =
        new java.util.concurrent.atomic.AtomicInteger();
    ServingModel device =
        new FakeModel("v7", 7, 256) {
          @Override
          public ModelExecutor executor() {
            ModelExecutor real = super.executor();
            return new ModelExecutor() {
              @Override
              public float[] forward(
                  io.kvant.engine.forward.Batch b, io.kvant.engine.kv.KvStore kv) {
                hostSteps.incrementAndGet();
                return real.forward(b, kv);
              }

              @Override
              public boolean samplesOnDevice() {
                return true;
              }

              @Override
              public int[] forwardAndSample(
                  io.kvant.engine.forward.Batch b,
                  io.kvant.engine.kv.KvStore kv,
                  io.kvant.engine.forward.DeviceSampling[] step) {
                real.forward(b, kv);
                rules.addAll(List.of(step));
                int[] ids = new int[step.length];
                java.util.Arrays.fill(ids, 1); // not EOS: the requests run to their length
                return ids;
              }
            };
          }
        };
    java.util.function.BiFunction<String, SamplingParams, Recorder> run =
        (id, sp) -> {
          Recorder rec = new Recorder();
          loop.submit(request(id, device, new int[] {1, 2}, 3, sp, List.of(), 0, null, rec));
          runToIdle(loop, 20);
          return rec;
        };
    Recorder minP = run.apply("min-p", new SamplingParams(0.8f, 0, 0f, 0.1f, 0, 0, 0, 5));
    assertThat(minP.result.completionTokens()).isEqualTo(3);
    assertThat(hostSteps).as("steps sampled on the host").hasValue(0);
    assertThat(rules)
        .hasSize(3)
        .allMatch(r -> r.minP() == 0.1f && r.temperature() == 0.8f && r.topP() == 1f);
    Recorder penalty = run.apply("presence", new SamplingParams(0.8f, 0, 0f, 0.1f, 0, 0.5f, 0, 5));
    assertThat(penalty.result.completionTokens()).isEqualTo(3);
    assertThat(hostSteps).as("a presence penalty needs the token history").hasValue(3);
    assertThat(rules).hasSize(3);
    assertQuiescent(loop);
  }

  @Test
  void anOutOfHeapForwardPassEndsOnlyItsRequestsAndTheLoopGoesOn() {
    EngineLoop loop = engine(64, 4, 64, 8, 10, clock);
    java.util.concurrent.atomic.AtomicBoolean fail =
        new java.util.concurrent.atomic.AtomicBoolean(true);
    ServingModel once =
        new FakeModel("v8", 8, 256) {
          @Override
          public ModelExecutor executor() {
            ModelExecutor real = super.executor();
            return (batch, kv) -> {
              if (fail.getAndSet(false)) {
                throw new OutOfMemoryError("test: the logits of this batch");
              }
              return real.forward(batch, kv);
            };
          }
        };
    Recorder first = new Recorder();
    loop.submit(request("first", once, new int[] {1, 2}, 3, first));
    runToIdle(loop, 10);
    assertThat(first.result.finishReason()).isEqualTo(FinishReason.ERROR);
    assertThat(first.result.error()).contains("OutOfMemoryError", "the logits of this batch");
    Recorder next = new Recorder();
    loop.submit(request("next", once, new int[] {1, 2}, 3, next));
    runToIdle(loop, 10);
    assertThat(next.result.finishReason()).isEqualTo(FinishReason.LENGTH);
    assertThat(next.result.completionTokens()).isEqualTo(3);
    assertQuiescent(loop);
  }

  @Test
  void anErrorOutsideTheForwardPassDoesNotEndTheLoopThread() throws Exception {
    EngineLoop loop = engine(64, 4, 64, 8, 100, java.time.Clock.systemUTC());
    loop.start();
    try {
      Recorder bad =
          new Recorder() {
            @Override
            public synchronized void onDelta(RequestDelta d) {
              throw new OutOfMemoryError("test: a sink out of heap");
            }
          };
      loop.submit(request("bad", v1, new int[] {1, 2}, 5, bad));
      awaitResult(bad);
      assertThat(bad.result.finishReason()).isEqualTo(FinishReason.ERROR);
      assertThat(bad.result.error()).contains("engine step failed", "a sink out of heap");
      Recorder ok = new Recorder();
      loop.submit(request("ok", v1, new int[] {1, 3}, 4, ok));
      awaitResult(ok);
      assertThat(ok.result.finishReason()).isEqualTo(FinishReason.LENGTH);
    } finally {
      loop.shutdownNow();
      assertThat(loop.awaitTermination(java.time.Duration.ofSeconds(10))).isTrue();
    }
  }

  /** Waits (at most 10 s, polling) for the loop thread to finish {@code r}'s request. */
  private static void awaitResult(Recorder r) throws InterruptedException {
    long deadline = System.nanoTime() + 10_000_000_000L;
    while (r.result == null && System.nanoTime() < deadline) {
      Thread.sleep(5);
    }
    assertThat(r.result).as("finished within 10 s").isNotNull();
  }

  @Test
  void theLoopThreadServesConcurrentSubmittersAndDrainsOnShutdown() throws Exception {
    EngineLoop loop = engine(64, 4, 64, 8, 100, java.time.Clock.systemUTC());
    loop.start();
    List<Recorder> recs = new ArrayList<>();
    List<Thread> threads = new ArrayList<>();
    for (int t = 0; t < 3; t++) {
      int base = t;
      Thread th =
          new Thread(
              () -> {
                for (int i = 0; i < 10; i++) {
                  Recorder rec = new Recorder();
                  synchronized (recs) {
                    recs.add(rec);
                  }
                  loop.submit(
                      request("t" + base + "-" + i, v1, new int[] {1, base + 2, i + 1}, 8, rec));
                }
              });
      threads.add(th);
      th.start();
    }
    for (Thread th : threads) {
      th.join(10_000);
    }
    loop.shutdown();
    assertThat(loop.awaitTermination(Duration.ofSeconds(20))).isTrue();
    assertThat(recs).hasSize(30).allSatisfy(r -> assertThat(r.finals).isEqualTo(1));
    assertThat(loop.stats().finished()).isEqualTo(30);
    loop.checkInvariants();
    assertThat(loop.kvCache().freeBlocks()).isEqualTo(loop.kvCache().totalBlocks());
  }
}
