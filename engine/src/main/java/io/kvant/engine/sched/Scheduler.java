package io.kvant.engine.sched;

import io.kvant.engine.kv.KvCacheManager;
import io.kvant.engine.kv.PrefixMatch;
import java.util.ArrayList;
import java.util.List;
import java.util.PriorityQueue;

/**
 * Iteration-level (continuous-batching) scheduling over a paged KV cache.
 *
 * <p>Design note (after vLLM V1's {@code Scheduler}): there are no prefill or decode phases. Each
 * request has a token count (prompt plus generated) and a computed-token count, and each step lets
 * computed catch up with total under a token budget: first every running request (one decode token,
 * or the rest of a chunked prefill), then waiting requests in (priority, arrival) order with
 * chunked prefill, as long as the budget, the sequence limit and the KV blocks last. A waiting
 * request starts at its longest cached prefix. When a running request cannot get a block, the
 * lowest-priority, latest running request is preempted: its blocks are freed and it goes back to
 * the waiting queue with its generated tokens, to be re-prefilled (recompute beats swapping on a
 * CPU, where KV and weights share memory bandwidth). No new request is admitted in a step that
 * preempted. Running requests are kept in scheduling order, so the victim is always the last one.
 *
 * <p>Single-threaded: owned by the {@link EngineLoop} thread.
 */
final class Scheduler {
  private final SchedulerConfig config;
  private final KvCacheManager kv;
  private final PriorityQueue<Sequence> waiting = new PriorityQueue<>(Sequence::compare);
  private final List<Sequence> running = new ArrayList<>();
  private long preemptions;

  Scheduler(SchedulerConfig config, KvCacheManager kv) {
    this.config = config;
    this.kv = kv;
  }

  void add(Sequence s) {
    s.status = Sequence.Status.WAITING;
    waiting.add(s);
  }

  int waitingCount() {
    return waiting.size();
  }

  int runningCount() {
    return running.size();
  }

  long preemptions() {
    return preemptions;
  }

  List<Sequence> waitingSnapshot() {
    return List.copyOf(waiting);
  }

  boolean idle() {
    return waiting.isEmpty() && running.isEmpty();
  }

  /** Builds the next step. Empty when nothing can run. */
  SchedulerOutput schedule() {
    int budget = config.maxBatchTokens();
    List<SchedulerOutput.Chunk> chunks = new ArrayList<>();
    List<Sequence> preempted = new ArrayList<>();
    for (int i = 0; i < running.size() && budget > 0; i++) {
      Sequence s = running.get(i);
      int n = Math.min(s.numTokens - s.numComputed, budget);
      if (n <= 0) {
        continue;
      }
      boolean scheduled = true;
      while (!kv.grow(s.kvSeq, s.numComputed + n)) {
        Sequence victim = running.getLast();
        budget += unschedule(chunks, victim);
        preempt(victim);
        preempted.add(victim);
        if (victim == s) {
          scheduled = false;
          break;
        }
      }
      if (scheduled) {
        chunks.add(chunk(s, n));
        budget -= n;
      }
    }
    while (preempted.isEmpty()
        && budget > 0
        && running.size() < config.maxSequences()
        && !waiting.isEmpty()) {
      Sequence s = waiting.peek();
      PrefixMatch match = kv.findCachedPrefix(s.tokens, s.numTokens, s.request.model().versionId());
      int cached = match.cachedTokens();
      int n = Math.min(s.numTokens - cached, budget);
      int handle = kv.open(match, n);
      if (handle < 0) {
        break;
      }
      waiting.poll();
      s.kvSeq = handle;
      s.numComputed = cached;
      if (s.cachedPromptTokens < 0) {
        s.cachedPromptTokens = Math.min(cached, s.promptLength);
      }
      s.status = Sequence.Status.RUNNING;
      insertRunning(s);
      chunks.add(chunk(s, n));
      budget -= n;
    }
    return new SchedulerOutput(chunks);
  }

  private static SchedulerOutput.Chunk chunk(Sequence s, int n) {
    return new SchedulerOutput.Chunk(s, s.numComputed, n, s.numComputed + n == s.numTokens);
  }

  private static int unschedule(List<SchedulerOutput.Chunk> chunks, Sequence s) {
    for (int i = 0; i < chunks.size(); i++) {
      if (chunks.get(i).seq() == s) {
        return chunks.remove(i).count();
      }
    }
    return 0;
  }

  private void insertRunning(Sequence s) {
    int i = running.size();
    while (i > 0 && Sequence.compare(running.get(i - 1), s) > 0) {
      i--;
    }
    running.add(i, s);
  }

  private void preempt(Sequence s) {
    running.remove(s);
    kv.free(s.kvSeq);
    s.kvSeq = -1;
    s.numComputed = 0;
    s.preemptions++;
    preemptions++;
    add(s);
  }

  /** Records that a chunk's KV was computed, and registers its full blocks for prefix reuse. */
  void computed(SchedulerOutput.Chunk c) {
    Sequence s = c.seq();
    s.numComputed = c.start() + c.count();
    kv.cacheComputed(s.kvSeq, s.tokens, s.numComputed);
  }

  /** Removes a request wherever it is and frees its blocks. */
  void remove(Sequence s) {
    if (s.status == Sequence.Status.RUNNING) {
      running.remove(s);
      kv.free(s.kvSeq);
      s.kvSeq = -1;
    } else if (s.status == Sequence.Status.WAITING) {
      waiting.remove(s);
    }
    s.status = Sequence.Status.FINISHED;
  }

  /** Throws if the queues and the KV cache disagree. */
  void checkInvariants() {
    kv.checkInvariants();
    if (kv.stats().sequences() != running.size()) {
      throw new IllegalStateException(
          kv.stats().sequences() + " KV sequences open for " + running.size() + " running");
    }
    for (int i = 0; i < running.size(); i++) {
      Sequence s = running.get(i);
      if (s.status != Sequence.Status.RUNNING || s.kvSeq < 0 || waiting.contains(s)) {
        throw new IllegalStateException("bad running request " + s);
      }
      if (kv.blocksOf(s.kvSeq) < kv.blocksFor(s.numComputed)) {
        throw new IllegalStateException(s + " has fewer blocks than computed tokens");
      }
      if (i > 0 && Sequence.compare(running.get(i - 1), s) > 0) {
        throw new IllegalStateException("running list out of order at " + s);
      }
    }
    for (Sequence s : waiting) {
      if (s.status != Sequence.Status.WAITING || s.kvSeq >= 0) {
        throw new IllegalStateException("bad waiting request " + s);
      }
    }
    if (running.size() > config.maxSequences()) {
      throw new IllegalStateException(running.size() + " running > " + config.maxSequences());
    }
  }
}
