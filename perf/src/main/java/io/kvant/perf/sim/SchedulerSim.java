package io.kvant.perf.sim;

import io.kvant.engine.kv.EvictionPolicyKind;
import io.kvant.engine.kv.KvCacheConfig;
import io.kvant.engine.kv.KvCacheManager;
import io.kvant.engine.kv.KvCacheType;
import io.kvant.engine.kv.KvGeometry;
import io.kvant.engine.sched.SchedulerConfig;
import io.kvant.engine.sched.SchedulerHarness;
import io.kvant.perf.load.RequestRecord;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;

/**
 * Replays a request trace through kvant's own scheduler, without a model or a server: scheduling is
 * the engine's real {@code Scheduler} (through {@link SchedulerHarness}: token budget, sequence
 * cap, running requests first, waiting ones in (priority, arrival) order from their longest cached
 * prefix, preemption of the lowest-priority latest request by recomputation, no admission in a step
 * that preempted), block accounting the engine's real {@link KvCacheManager} (paging, prefix
 * caching, eviction), and step time a {@link CostModel} in simulated time. Use the results to
 * compare settings (budget, blocks, prefix caching) and trace shapes, not as absolute latencies:
 * only the cost model is a model.
 *
 * <p>The block manager is built with a 1-layer, 1-head geometry so its stores cost almost no
 * memory; only the block count matters to it. Deterministic: same trace and config, same result.
 * Trace requests carry the priority of their trace line (default 0).
 */
public final class SchedulerSim {
  /**
   * Scheduler settings.
   *
   * @param tokenBudget tokens per step (max_num_batched_tokens)
   * @param maxSeqs running requests at most
   * @param blocks KV blocks in the pool
   * @param blockSize tokens per block
   * @param prefixCaching whether full blocks are shared by content
   */
  public record Config(
      int tokenBudget, int maxSeqs, int blocks, int blockSize, boolean prefixCaching) {
    public Config {
      if (tokenBudget < 1 || maxSeqs < 1 || blocks < 1 || blockSize < 1) {
        throw new IllegalArgumentException("sim: budget, seqs, blocks and block size must be >= 1");
      }
    }
  }

  /**
   * Outcome of a simulation.
   *
   * @param records per request, times in simulated ms
   * @param durationS simulated time from the first arrival to the last completion
   * @param steps engine steps
   * @param preemptions requests preempted (recomputed)
   * @param prefixHitRatio prompt tokens served from the prefix cache / tokens looked up
   * @param peakKvUsage largest fraction of blocks held
   * @param meanBatchTokens mean tokens per step
   */
  public record Result(
      List<RequestRecord> records,
      double durationS,
      long steps,
      long preemptions,
      double prefixHitRatio,
      double peakKvUsage,
      double meanBatchTokens) {}

  private static final long MAX_STEPS = 50_000_000L;
  private static final KvGeometry TINY = new KvGeometry(1, 1, 2);

  private final Config config;
  private final CostModel cost;

  public SchedulerSim(Config config, CostModel cost) {
    this.config = config;
    this.cost = cost;
  }

  private static final class Req {
    final int index;
    final Trace.Entry entry;
    int generated;
    double firstS = -1;
    double lastS;
    final List<Double> itl = new ArrayList<>();

    Req(int index, Trace.Entry e) {
      this.index = index;
      this.entry = e;
    }
  }

  /**
   * Runs the trace to completion.
   *
   * @throws IllegalArgumentException if a request can never fit the cache
   * @throws IllegalStateException if the step limit is reached
   */
  public Result run(List<Trace.Entry> trace) {
    KvCacheConfig kvc =
        new KvCacheConfig(
            KvCacheType.INT8,
            config.blockSize(),
            (long) config.blocks()
                * new KvCacheConfig(
                        KvCacheType.INT8, config.blockSize(), 1, EvictionPolicyKind.LRU, false)
                    .bytesPerBlock(TINY),
            EvictionPolicyKind.LRU,
            config.prefixCaching());
    KvCacheManager kv = new KvCacheManager(TINY, kvc);
    SchedulerHarness sched =
        new SchedulerHarness(
            new SchedulerConfig(config.tokenBudget(), config.maxSeqs(), Integer.MAX_VALUE),
            kv,
            "sim");
    Deque<Req> pending = new ArrayDeque<>();
    List<Req> reqs = new ArrayList<>();
    for (int i = 0; i < trace.size(); i++) {
      Trace.Entry e = trace.get(i);
      if (kv.blocksFor(e.promptTokens() + e.outputTokens()) > kv.totalBlocks()) {
        throw new IllegalArgumentException(
            "trace request " + i + " needs more blocks than the cache has");
      }
      Req r = new Req(i, e);
      reqs.add(r);
      pending.add(r);
    }
    List<RequestRecord> done = new ArrayList<>();
    double t = trace.isEmpty() ? 0 : trace.getFirst().arrivalS();
    double t0 = t;
    long steps = 0;
    long batchTokens = 0;
    double peak = 0;
    while (!pending.isEmpty() || !sched.idle()) {
      if (++steps > MAX_STEPS) {
        throw new IllegalStateException("simulation exceeded " + MAX_STEPS + " steps");
      }
      while (!pending.isEmpty() && pending.peek().entry.arrivalS() <= t) {
        Req r = pending.poll();
        sched.add(r.index, r.entry.prompt(r.index), r.entry.outputTokens(), r.entry.priority());
      }
      if (sched.idle()) {
        t = pending.peek().entry.arrivalS();
        steps--;
        continue;
      }
      List<SchedulerHarness.Scheduled> scheduled = sched.step();
      peak = Math.max(peak, kv.stats().usage());
      int tokens = 0;
      long kvTokens = 0;
      for (SchedulerHarness.Scheduled c : scheduled) {
        tokens += c.count();
        kvTokens += c.start() + c.count();
      }
      batchTokens += tokens;
      if (tokens == 0) {
        // Nothing fits: wait for the next arrival (cannot happen while something runs).
        if (pending.isEmpty()) {
          throw new IllegalStateException(
              "simulation stalled with " + sched.waiting() + " waiting");
        }
        t = Math.max(t, pending.peek().entry.arrivalS());
        continue;
      }
      t += cost.stepSeconds(tokens, kvTokens);
      // Outputs: a request whose step reached its last token produces one.
      for (SchedulerHarness.Scheduled c : scheduled) {
        if (!c.sample()) {
          continue;
        }
        Req r = reqs.get(c.request());
        if (r.firstS < 0) {
          r.firstS = t;
        } else {
          r.itl.add((t - r.lastS) * 1e3);
        }
        r.lastS = t;
        r.generated++;
        if (r.generated >= r.entry.outputTokens()) {
          sched.finish(r.index);
          done.add(record(r, t0));
        } else {
          sched.append(r.index, 2_000_000 + Math.floorMod(r.index * 131 + r.generated, 1 << 20));
        }
      }
    }
    sched.checkInvariants();
    done.sort(java.util.Comparator.comparingInt(RequestRecord::index));
    double end = done.stream().mapToDouble(r -> (r.startMs() + r.e2eMs()) / 1e3).max().orElse(0);
    return new Result(
        List.copyOf(done),
        Math.max(1e-9, end),
        steps,
        sched.preemptions(),
        kv.stats().hitRatio(),
        peak,
        steps == 0 ? 0 : (double) batchTokens / steps);
  }

  private static RequestRecord record(Req r, double t0) {
    double arrival = r.entry.arrivalS();
    return new RequestRecord(
        r.index,
        (arrival - t0) * 1e3,
        true,
        "",
        (r.firstS - arrival) * 1e3,
        (r.lastS - arrival) * 1e3,
        r.entry.promptTokens(),
        0, // the simulator reports its prefix cache as a whole (hit ratio), not per request
        r.generated,
        r.itl.stream().mapToDouble(Double::doubleValue).toArray(),
        "sim");
  }
}
