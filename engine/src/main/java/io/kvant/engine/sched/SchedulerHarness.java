package io.kvant.engine.sched;

import io.kvant.engine.kv.KvCacheManager;
import io.kvant.engine.sample.SamplingParams;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The engine's own {@link Scheduler} without a model or an engine loop, for replaying request
 * traces in simulated time ({@code perf}'s scheduler simulator). Each {@link #step} is exactly the
 * scheduling decision the {@link EngineLoop} would take (budget, sequence cap, prefix cache,
 * priority order, preemption by recomputation) over the same {@link KvCacheManager}; the caller
 * plays the forward pass: it decides how long the step took and which token each sampling request
 * produced ({@link #append}) or that it finished ({@link #finish}).
 *
 * <p>Not thread-safe; one replay at a time.
 */
public final class SchedulerHarness {
  /**
   * One request's share of a step.
   *
   * @param request the caller's request number
   * @param start first token position whose KV the step computes
   * @param count tokens computed
   * @param sample whether the step reaches the request's last token, so it produces a token
   */
  public record Scheduled(int request, int start, int count, boolean sample) {}

  private final Scheduler scheduler;
  private final ServingModel model;
  private final Map<Integer, Sequence> sequences = new HashMap<>();
  private long arrivals;

  /**
   * @param config the scheduler's limits ({@code maxWaiting} is not enforced here: a trace's
   *     requests all wait)
   * @param kv the block manager the scheduler allocates from
   * @param versionId the version id the prefix cache keys blocks by
   */
  public SchedulerHarness(SchedulerConfig config, KvCacheManager kv, String versionId) {
    this.scheduler = new Scheduler(config, kv);
    this.model = new ReplayedModel(versionId);
  }

  /**
   * Queues request {@code request} (arrival order is call order).
   *
   * @param priority lower runs first, as {@code GenerateRequest.priority}
   */
  public void add(int request, int[] promptTokens, int maxTokens, int priority) {
    if (sequences.containsKey(request)) {
      throw new IllegalArgumentException("request " + request + " was already added");
    }
    GenerationRequest r =
        new GenerationRequest(
            Integer.toString(request),
            model,
            promptTokens,
            maxTokens,
            SamplingParams.GREEDY,
            List.of(),
            0,
            priority,
            null,
            DISCARD);
    Sequence s = new Sequence(r, arrivals++);
    sequences.put(request, s);
    scheduler.add(s);
  }

  /**
   * Schedules one step and records its KV as computed (full blocks enter the prefix cache), as the
   * engine loop does after the forward pass.
   *
   * @return what the step computes; empty when nothing can run
   */
  public List<Scheduled> step() {
    SchedulerOutput out = scheduler.schedule();
    List<Scheduled> steps = new ArrayList<>(out.chunks().size());
    for (SchedulerOutput.Chunk c : out.chunks()) {
      scheduler.computed(c);
      steps.add(new Scheduled(Integer.parseInt(c.seq().id()), c.start(), c.count(), c.sample()));
    }
    return steps;
  }

  /** Request {@code request} produced {@code token} (it runs on). */
  public void append(int request, int token) {
    sequence(request).append(token);
  }

  /** Request {@code request} is done: its blocks are freed (full ones stay in the cache). */
  public void finish(int request) {
    scheduler.remove(sequence(request));
    sequences.remove(request);
  }

  public boolean idle() {
    return scheduler.idle();
  }

  public int waiting() {
    return scheduler.waitingCount();
  }

  public long preemptions() {
    return scheduler.preemptions();
  }

  /** Throws if the queues and the KV cache disagree. */
  public void checkInvariants() {
    scheduler.checkInvariants();
  }

  private Sequence sequence(int request) {
    Sequence s = sequences.get(request);
    if (s == null) {
      throw new IllegalArgumentException("no request " + request);
    }
    return s;
  }

  private static final RequestSink DISCARD =
      new RequestSink() {
        @Override
        public void onDelta(RequestDelta delta) {}

        @Override
        public void onFinish(RequestFinal result) {}
      };

  /** The version a replayed request is pinned to: an id for the prefix cache, and no weights. */
  private record ReplayedModel(String versionId) implements ServingModel {
    @Override
    public ModelExecutor executor() {
      throw new UnsupportedOperationException("a replayed trace runs no forward pass");
    }

    @Override
    public int contextLength() {
      return Integer.MAX_VALUE;
    }

    @Override
    public int vocabSize() {
      return 0;
    }

    @Override
    public int eosToken() {
      return -1;
    }

    @Override
    public TokenTextDecoder newDecoder(int[] prompt) {
      return new TokenTextDecoder() {
        @Override
        public String append(int token) {
          return "";
        }

        @Override
        public String flush() {
          return "";
        }
      };
    }
  }
}
