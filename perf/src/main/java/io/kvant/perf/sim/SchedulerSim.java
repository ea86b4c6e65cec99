package io.kvant.perf.sim;

import io.kvant.engine.kv.EvictionPolicyKind;
import io.kvant.engine.kv.KvCacheConfig;
import io.kvant.engine.kv.KvCacheManager;
import io.kvant.engine.kv.KvCacheType;
import io.kvant.engine.kv.KvGeometry;
import io.kvant.engine.kv.PrefixMatch;
import io.kvant.perf.load.RequestRecord;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.List;

/**
 * Replays a request trace through a model of kvant's scheduler, without a model or a server: the
 * block accounting is the engine's real {@link KvCacheManager} (paging, prefix caching, eviction),
 * the scheduling policy is a simplified copy of the server's, and step time comes from a {@link
 * CostModel} in simulated time.
 *
 * <p>Not yet the real scheduler: {@code io.kvant.engine.sched.Scheduler} now lives in the engine,
 * which perf depends on, but its API is package-private and this copy has drifted from it (it
 * ignores priority). Driving the real one is open work (issue 16). This is a stand-alone model of
 * the policy kvant's scheduler follows (and vLLM v1's): each step, running requests first (one
 * decode token each, or their next prefill chunk), then waiting requests in arrival order while the
 * token budget, the sequence cap and free blocks allow, with chunked prefill (a request's computed
 * tokens catch up with its known tokens, no prefill/decode phases). When a running request cannot
 * grow, the most recently admitted one is preempted by recomputation: its blocks are freed and it
 * goes back to the front of the queue. Results follow the scheduler's policy, not its exact code;
 * use them to compare settings (budget, blocks, prefix caching) and trace shapes, not as absolute
 * latencies.
 *
 * <p>The block manager is built with a 1-layer, 1-head geometry so its stores cost almost no
 * memory; only the block count matters to it. Deterministic: same trace and config, same result.
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
    final int[] tokens;
    int len;
    int computed;
    int generated;
    int seq = -1;
    double firstS = -1;
    double lastS;
    final List<Double> itl = new ArrayList<>();
    int scheduled;

    Req(int index, Trace.Entry e) {
      this.index = index;
      this.entry = e;
      this.tokens = Arrays.copyOf(e.prompt(index), e.promptTokens() + e.outputTokens());
      this.len = e.promptTokens();
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
    Deque<Req> pending = new ArrayDeque<>();
    for (int i = 0; i < trace.size(); i++) {
      Trace.Entry e = trace.get(i);
      if (kv.blocksFor(e.promptTokens() + e.outputTokens()) > kv.totalBlocks()) {
        throw new IllegalArgumentException(
            "trace request " + i + " needs more blocks than the cache has");
      }
      pending.add(new Req(i, e));
    }
    Deque<Req> waiting = new ArrayDeque<>();
    List<Req> running = new ArrayList<>();
    List<RequestRecord> done = new ArrayList<>();
    double t = trace.isEmpty() ? 0 : trace.getFirst().arrivalS();
    double t0 = t;
    long steps = 0;
    long preemptions = 0;
    long batchTokens = 0;
    double peak = 0;
    while (!pending.isEmpty() || !waiting.isEmpty() || !running.isEmpty()) {
      if (++steps > MAX_STEPS) {
        throw new IllegalStateException("simulation exceeded " + MAX_STEPS + " steps");
      }
      while (!pending.isEmpty() && pending.peek().entry.arrivalS() <= t) {
        waiting.add(pending.poll());
      }
      if (waiting.isEmpty() && running.isEmpty()) {
        t = pending.peek().entry.arrivalS();
        steps--;
        continue;
      }
      int budget = config.tokenBudget();
      List<Req> scheduled = new ArrayList<>();
      // 1. Running requests: their next token (decode) or prefill chunk.
      for (int i = 0; i < running.size() && budget > 0; i++) {
        Req r = running.get(i);
        int n = Math.min(r.len - r.computed, budget);
        while (!kv.grow(r.seq, r.computed + n)) {
          Req victim = running.removeLast();
          preempt(kv, victim, waiting);
          preemptions++;
          if (victim == r) {
            n = 0;
            break;
          }
        }
        if (n > 0) {
          r.scheduled = n;
          budget -= n;
          scheduled.add(r);
        }
      }
      // 2. Waiting requests in order, while budget, sequence cap and blocks allow.
      while (!waiting.isEmpty() && budget > 0 && running.size() < config.maxSeqs()) {
        Req r = waiting.peek();
        PrefixMatch m = kv.findCachedPrefix(r.tokens, r.len, "sim");
        int n = Math.min(r.len - m.cachedTokens(), budget);
        int seq = kv.open(m, n);
        if (seq < 0) {
          break;
        }
        waiting.poll();
        r.seq = seq;
        r.computed = m.cachedTokens();
        r.scheduled = n;
        budget -= n;
        running.add(r);
        scheduled.add(r);
      }
      peak = Math.max(peak, kv.stats().usage());
      int tokens = 0;
      long kvTokens = 0;
      for (Req r : scheduled) {
        tokens += r.scheduled;
        kvTokens += r.computed + r.scheduled;
      }
      batchTokens += tokens;
      if (tokens == 0) {
        // Nothing fits: wait for the next arrival (cannot happen while something runs).
        if (pending.isEmpty()) {
          throw new IllegalStateException("simulation stalled with " + waiting.size() + " waiting");
        }
        t = Math.max(t, pending.peek().entry.arrivalS());
        continue;
      }
      t += cost.stepSeconds(tokens, kvTokens);
      // 3. Outputs: a request whose computed tokens caught up produces a token.
      for (Req r : scheduled) {
        r.computed += r.scheduled;
        kv.cacheComputed(r.seq, r.tokens, r.computed);
        if (r.computed < r.len) {
          continue;
        }
        if (r.firstS < 0) {
          r.firstS = t;
        } else {
          r.itl.add((t - r.lastS) * 1e3);
        }
        r.lastS = t;
        r.generated++;
        if (r.generated >= r.entry.outputTokens()) {
          kv.free(r.seq);
          running.remove(r);
          done.add(record(r, t0));
        } else {
          r.tokens[r.len] = 2_000_000 + Math.floorMod(r.index * 131 + r.generated, 1 << 20);
          r.len++;
        }
      }
    }
    kv.checkInvariants();
    done.sort(java.util.Comparator.comparingInt(RequestRecord::index));
    double end = done.stream().mapToDouble(r -> (r.startMs() + r.e2eMs()) / 1e3).max().orElse(0);
    return new Result(
        List.copyOf(done),
        Math.max(1e-9, end),
        steps,
        preemptions,
        kv.stats().hitRatio(),
        peak,
        steps == 0 ? 0 : (double) batchTokens / steps);
  }

  private static void preempt(KvCacheManager kv, Req r, Deque<Req> waiting) {
    kv.free(r.seq);
    r.seq = -1;
    r.computed = 0;
    waiting.addFirst(r);
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
        r.generated,
        r.itl.stream().mapToDouble(Double::doubleValue).toArray(),
        "sim");
  }
}
