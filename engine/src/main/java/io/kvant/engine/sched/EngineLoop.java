package io.kvant.engine.sched;

import io.kvant.engine.forward.Batch;
import io.kvant.engine.forward.DeviceSampling;
import io.kvant.engine.generate.FinishReason;
import io.kvant.engine.kv.KvCacheManager;
import io.kvant.engine.kv.KvCacheStats;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The engine loop: one thread that runs schedule, execute, sample and update forever, and the
 * thread-safe front door ({@link #submit}, {@link #abort}, {@link #stats}) the gRPC layer calls.
 *
 * <p>Design note: callers never touch scheduler state. Submissions and aborts go through lock-free
 * inboxes that the loop drains at each step boundary, so a cancel takes effect between steps and
 * frees the request's blocks before the next schedule. Deadlines are checked against the injected
 * {@link Clock} at the same point. Outputs go to each request's {@link RequestSink} on the loop
 * thread; sinks must not block. A step groups its rows by model version and runs one forward per
 * version, so requests pinned to an old version finish on it during a hot swap. Tests drive {@link
 * #step()} directly, without the thread, so every schedule is deterministic.
 */
public final class EngineLoop implements AutoCloseable {
  private static final long IDLE_WAIT_MS = 50;

  private final SchedulerConfig config;
  private final KvCacheManager kv;
  private final Clock clock;
  private final Scheduler scheduler;
  private final ConcurrentLinkedQueue<Sequence> submissions = new ConcurrentLinkedQueue<>();
  private final ConcurrentLinkedQueue<String> aborts = new ConcurrentLinkedQueue<>();
  private final ConcurrentLinkedQueue<Migration> migrations = new ConcurrentLinkedQueue<>();
  private final ConcurrentHashMap<String, Sequence> live = new ConcurrentHashMap<>();
  private final AtomicInteger queued = new AtomicInteger();
  private final Semaphore wake = new Semaphore(0);
  private volatile boolean draining;
  private volatile boolean stopped;
  private volatile SchedulerStats stats = new SchedulerStats(0, 0, 0, 0, 0, 0, 0);
  private volatile Thread thread;
  private long arrivals;
  private long steps;
  private long finished;

  public EngineLoop(SchedulerConfig config, KvCacheManager kv, Clock clock) {
    this.config = config;
    this.kv = kv;
    this.clock = clock;
    this.scheduler = new Scheduler(config, kv);
  }

  /**
   * Admits a request (pinned to {@code request.model()}); its outputs go to its sink.
   *
   * @throws RejectedException QUEUE_FULL when {@code maxWaiting} requests already wait; INVALID
   *     (naming the field) when it can never run: empty prompt, token ids outside the vocabulary,
   *     non-positive max_tokens, prompt plus max_tokens beyond the context window or the whole KV
   *     cache, a negative or too large logprobs count, a request id already in flight;
   *     SHUTTING_DOWN after {@link #shutdown()}
   */
  public void submit(GenerationRequest request) {
    validate(request);
    if (draining || stopped) {
      throw new RejectedException(
          RejectedException.Reason.SHUTTING_DOWN, null, "the engine is shutting down");
    }
    if (queued.incrementAndGet() > config.maxWaiting()) {
      queued.decrementAndGet();
      throw new RejectedException(
          RejectedException.Reason.QUEUE_FULL,
          null,
          "the queue holds " + config.maxWaiting() + " waiting requests");
    }
    Sequence s;
    synchronized (this) {
      s = new Sequence(request, arrivals++);
    }
    if (live.putIfAbsent(request.id(), s) != null) {
      queued.decrementAndGet();
      throw invalid("request_id", "a request with id " + request.id() + " is in flight");
    }
    submissions.add(s);
    wake.release();
  }

  private void validate(GenerationRequest r) {
    ServingModel m = r.model();
    int[] prompt = r.promptTokens();
    if (r.id() == null || r.id().isEmpty()) {
      throw invalid("request_id", "must not be empty");
    }
    if (prompt.length == 0) {
      throw invalid("prompt", "must not be empty");
    }
    for (int t : prompt) {
      if (t < 0 || t >= m.vocabSize()) {
        throw invalid(
            "prompt", "token id " + t + " outside the vocabulary [0, " + m.vocabSize() + ")");
      }
    }
    if (r.maxTokens() <= 0) {
      throw invalid("max_tokens", "must be positive, got " + r.maxTokens());
    }
    if (r.logprobs() < 0 || r.logprobs() > m.vocabSize()) {
      throw invalid("logprobs", "must be in [0, " + m.vocabSize() + "], got " + r.logprobs());
    }
    if (prompt.length >= m.contextLength()) {
      throw invalid(
          "prompt",
          prompt.length + " tokens do not fit the context window of " + m.contextLength());
    }
    long total = (long) prompt.length + r.maxTokens();
    if (total > m.contextLength()) {
      throw invalid(
          "max_tokens",
          "prompt ("
              + prompt.length
              + ") plus max_tokens ("
              + r.maxTokens()
              + ") exceeds the context window of "
              + m.contextLength());
    }
    if (total > kv.capacityTokens()) {
      throw invalid(
          "max_tokens",
          "prompt plus max_tokens ("
              + total
              + " tokens) exceeds the whole KV cache ("
              + kv.capacityTokens()
              + " tokens)");
    }
  }

  private static RejectedException invalid(String field, String message) {
    return new RejectedException(RejectedException.Reason.INVALID, field, message);
  }

  /** A pending move of every sequence on {@code from} to {@code to}. */
  private record Migration(ServingModel from, ServingModel to) {}

  /**
   * Moves every live request on {@code from} that has not started computing to {@code to} at the
   * next step boundary (an IMMEDIATE swap). A request that has started (it has KV, and maybe
   * output, from {@code from}) finishes on {@code from}: a response is always made by one version,
   * and no KV of mixed weights exists. The caller makes sure both versions have the same KV
   * geometry.
   */
  public void migrate(ServingModel from, ServingModel to) {
    migrations.add(new Migration(from, to));
    wake.release();
  }

  /** Cancels a request (no-op if unknown or finished); it ends CANCELLED at the next step. */
  public void abort(String requestId) {
    aborts.add(requestId);
    wake.release();
  }

  /** The latest snapshot, safe from any thread. */
  public SchedulerStats stats() {
    return stats;
  }

  /** Starts the loop thread. */
  public synchronized void start() {
    if (thread != null) {
      throw new IllegalStateException("already started");
    }
    Thread t = new Thread(this::run, "kvant-engine-loop");
    t.setDaemon(true);
    thread = t;
    t.start();
  }

  private void run() {
    while (!stopped) {
      boolean worked;
      try {
        worked = step();
      } catch (RuntimeException | OutOfMemoryError | StackOverflowError e) {
        // Thrown outside the forward pass (by a sink, say): the live requests end with the error
        // and the loop goes on; an ended loop thread would leave every request waiting forever.
        failLive("engine step failed: " + e);
        worked = false;
      }
      if (!worked) {
        if (draining && live.isEmpty()) {
          break;
        }
        try {
          wake.tryAcquire(IDLE_WAIT_MS, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          break;
        }
      }
    }
    if (stopped) {
      drainInboxes();
      for (Sequence s : new ArrayList<>(live.values())) {
        finish(s, FinishReason.CANCELLED, RequestFinal.SHUTDOWN);
      }
    }
    stopped = true;
    publishStats();
  }

  /** Ends every live request with {@code error} (best effort: a failing sink is skipped). */
  private void failLive(String error) {
    for (Sequence s : new ArrayList<>(live.values())) {
      try {
        finish(s, FinishReason.ERROR, error);
      } catch (RuntimeException | OutOfMemoryError e) {
        live.remove(s.id(), s);
      }
    }
  }

  /** Refuses new requests; in-flight ones run to completion, then the thread exits. */
  public void shutdown() {
    draining = true;
    wake.release();
  }

  /** Stops at the next step boundary, cancelling everything in flight. */
  public void shutdownNow() {
    draining = true;
    stopped = true;
    wake.release();
  }

  /** Waits for the loop thread to exit; true if it did within {@code timeout}. */
  public boolean awaitTermination(Duration timeout) throws InterruptedException {
    Thread t = thread;
    if (t == null) {
      return true;
    }
    t.join(timeout);
    return !t.isAlive();
  }

  @Override
  public void close() throws InterruptedException {
    shutdownNow();
    awaitTermination(Duration.ofSeconds(10));
  }

  /**
   * Runs one iteration: applies submissions, aborts and deadlines, then schedules and runs one
   * step. Called by the loop thread, or directly by tests that never {@link #start()} it.
   *
   * @return false when there was nothing to run
   */
  public boolean step() {
    drainInboxes();
    expireDeadlines();
    SchedulerOutput out = scheduler.schedule();
    if (out.chunks().isEmpty()) {
      publishStats();
      return false;
    }
    for (SchedulerOutput.Chunk c : out.chunks()) {
      if (!c.seq().started) {
        c.seq().started = true;
        queued.decrementAndGet();
      }
    }
    Map<ServingModel, List<SchedulerOutput.Chunk>> groups = new LinkedHashMap<>();
    for (SchedulerOutput.Chunk c : out.chunks()) {
      groups.computeIfAbsent(c.seq().model, k -> new ArrayList<>()).add(c);
    }
    for (Map.Entry<ServingModel, List<SchedulerOutput.Chunk>> g : groups.entrySet()) {
      execute(g.getKey(), g.getValue());
    }
    steps++;
    publishStats();
    return true;
  }

  private void execute(ServingModel model, List<SchedulerOutput.Chunk> chunks) {
    int rows = 0;
    int samples = 0;
    for (SchedulerOutput.Chunk c : chunks) {
      rows += c.count();
      samples += c.sample() ? 1 : 0;
    }
    int[] tokens = new int[rows];
    int[] positions = new int[rows];
    int[] seqs = new int[rows];
    int[] logitRows = new int[samples];
    int r = 0;
    int j = 0;
    for (SchedulerOutput.Chunk c : chunks) {
      for (int i = 0; i < c.count(); i++, r++) {
        tokens[r] = c.seq().tokens[c.start() + i];
        positions[r] = c.start() + i;
        seqs[r] = c.seq().kvSeq;
      }
      if (c.sample()) {
        logitRows[j++] = r - 1;
      }
    }
    ModelExecutor executor = model.executor();
    DeviceSampling[] rules = executor.samplesOnDevice() ? deviceRules(chunks, samples) : null;
    float[] logits = null;
    int[] sampled = null;
    try {
      Batch batch = new Batch(tokens, positions, seqs, logitRows);
      if (rules != null) {
        sampled = executor.forwardAndSample(batch, kv.store(), rules);
      } else {
        logits = executor.forward(batch, kv.store());
      }
    } catch (RuntimeException | OutOfMemoryError | StackOverflowError e) {
      // An out-of-heap (a batch's logits, a kernel's buffers) or a stack overflow ends this
      // step's requests like any failed forward pass; left uncaught it would end the loop thread
      // and leave every request, running and to come, waiting forever.
      for (SchedulerOutput.Chunk c : chunks) {
        finish(c.seq(), FinishReason.ERROR, "forward pass failed: " + e);
      }
      return;
    }
    int vocab = model.vocabSize();
    if (logits != null) {
      sampled = sampleOnHost(executor, chunks, samples, logits, vocab);
    }
    j = 0;
    for (SchedulerOutput.Chunk c : chunks) {
      Sequence s = c.seq();
      if (s.status != Sequence.Status.RUNNING) {
        if (c.sample()) {
          j++;
        }
        continue;
      }
      scheduler.computed(c);
      if (c.sample()) {
        int off = j * vocab;
        int token = sampled[j++];
        if (rules != null) {
          s.sampler.recordSampled(token);
        }
        update(s, token, logits == null ? List.of() : logprobs(s, logits, off, vocab, token));
      }
    }
  }

  /**
   * The host's draw for each sampled row of a step, one row per task on the forward pass's host
   * threads (a 128K-token vocabulary costs about a millisecond a sampled row, which one engine
   * thread would pay for every row in turn). Each row's sampler is its own sequence's, so the draws
   * are the same in any order; a sequence that is no longer running gets -1 and its sampler is left
   * untouched.
   */
  private static int[] sampleOnHost(
      ModelExecutor executor,
      List<SchedulerOutput.Chunk> chunks,
      int samples,
      float[] logits,
      int vocab) {
    Sequence[] rows = new Sequence[samples];
    int j = 0;
    for (SchedulerOutput.Chunk c : chunks) {
      if (c.sample()) {
        Sequence s = c.seq();
        rows[j++] = s.status == Sequence.Status.RUNNING ? s : null;
      }
    }
    int[] tokens = new int[samples];
    executor.forEachOnHost(
        samples,
        i -> tokens[i] = rows[i] == null ? -1 : rows[i].sampler.sample(logits, i * vocab, vocab));
    return tokens;
  }

  /**
   * The device sampling rules of a step's sampled rows, or null when any of them needs the host
   * (logprobs or penalties): then the whole step returns logits. Seeds are drawn only once every
   * row qualifies, so a fallback leaves the samplers' generators untouched.
   */
  private static DeviceSampling[] deviceRules(List<SchedulerOutput.Chunk> chunks, int samples) {
    for (SchedulerOutput.Chunk c : chunks) {
      if (c.sample() && (c.seq().request.logprobs() > 0 || !c.seq().sampler.onDeviceCapable())) {
        return null;
      }
    }
    DeviceSampling[] rules = new DeviceSampling[samples];
    int j = 0;
    for (SchedulerOutput.Chunk c : chunks) {
      if (c.sample()) {
        rules[j++] = c.seq().sampler.nextDeviceRule();
      }
    }
    return rules;
  }

  /** The logprobs entry of {@code token} drawn from row {@code off} (none unless asked for). */
  private static List<TokenLogprob> logprobs(
      Sequence s, float[] logits, int off, int vocab, int token) {
    int n = s.request.logprobs();
    if (n <= 0 || token == s.model.eosToken()) {
      return List.of();
    }
    return List.of(logprob(s.sampler.logprobs(logits, off, vocab), token, n));
  }

  private void update(Sequence s, int token, List<TokenLogprob> lp) {
    GenerationRequest req = s.request;
    if (token == s.model.eosToken()) {
      finish(s, FinishReason.STOP, null);
      return;
    }
    s.append(token);
    String text = s.stop.append(s.decoder.append(token));
    if (!emit(s, new RequestDelta(req.id(), text, new int[] {token}, lp, s.model.versionId()))) {
      return;
    }
    if (s.stop.stopped()) {
      finish(s, FinishReason.STOP, null);
    } else if (s.generated() >= req.maxTokens() || s.numTokens >= s.model.contextLength()) {
      finish(s, FinishReason.LENGTH, null);
    }
  }

  private static TokenLogprob logprob(float[] lp, int token, int top) {
    int[] ids = new int[top];
    float[] vals = new float[top];
    int n = 0;
    for (int t = 0; t < lp.length; t++) {
      if (n < top || lp[t] > vals[n - 1]) {
        int i = n < top ? n++ : n - 1;
        while (i > 0 && vals[i - 1] < lp[t]) {
          ids[i] = ids[i - 1];
          vals[i] = vals[i - 1];
          i--;
        }
        ids[i] = t;
        vals[i] = lp[t];
      }
    }
    return new TokenLogprob(token, lp[token], ids, vals);
  }

  private boolean emit(Sequence s, RequestDelta delta) {
    try {
      s.request.sink().onDelta(delta);
      return true;
    } catch (RuntimeException e) {
      finish(s, FinishReason.ERROR, "output sink failed: " + e);
      return false;
    }
  }

  private void finish(Sequence s, FinishReason reason, String error) {
    if (s.status == Sequence.Status.FINISHED) {
      return;
    }
    if (!s.started) {
      s.started = true;
      queued.decrementAndGet();
    }
    if (reason == FinishReason.STOP || reason == FinishReason.LENGTH) {
      String tail = s.stop.stopped() ? "" : s.stop.append(s.decoder.flush()) + s.stop.finish();
      if (!tail.isEmpty()) {
        try {
          s.request
              .sink()
              .onDelta(new RequestDelta(s.id(), tail, new int[0], List.of(), s.model.versionId()));
        } catch (RuntimeException e) {
          reason = FinishReason.ERROR;
          error = "output sink failed: " + e;
        }
      }
    }
    scheduler.remove(s);
    live.remove(s.id(), s);
    finished++;
    RequestFinal result =
        new RequestFinal(
            s.id(),
            reason,
            error,
            s.promptLength,
            s.generated(),
            Math.max(0, s.cachedPromptTokens),
            s.model.versionId());
    try {
      s.request.sink().onFinish(result);
    } catch (RuntimeException ignored) {
      // the request is gone either way; a failing sink must not stop the loop
    }
  }

  private void drainInboxes() {
    for (Migration m; (m = migrations.poll()) != null; ) {
      for (Sequence s : live.values()) {
        // Only requests that have computed nothing move: one that has KV or output from `from`
        // finishes there, so every response is made by exactly one version.
        if (s.model == m.from() && !s.started) {
          s.model = m.to();
        }
      }
    }
    for (Sequence s; (s = submissions.poll()) != null; ) {
      scheduler.add(s);
    }
    for (String id; (id = aborts.poll()) != null; ) {
      Sequence s = live.get(id);
      if (s != null && s.status != Sequence.Status.FINISHED && !submissions.contains(s)) {
        finish(s, FinishReason.CANCELLED, null);
      }
    }
  }

  private void expireDeadlines() {
    Instant now = clock.instant();
    for (Sequence s : new ArrayList<>(live.values())) {
      Instant d = s.request.deadline();
      if (d != null && !now.isBefore(d) && s.status != Sequence.Status.FINISHED) {
        if (!submissions.contains(s)) {
          finish(s, FinishReason.CANCELLED, "deadline exceeded");
        }
      }
    }
  }

  private void publishStats() {
    KvCacheStats k = kv.stats();
    stats =
        new SchedulerStats(
            scheduler.waitingCount(),
            scheduler.runningCount(),
            k.usage(),
            k.hitRatio(),
            scheduler.preemptions(),
            steps,
            finished);
  }

  /**
   * Throws {@link IllegalStateException} if the scheduler's queues and the KV cache disagree (ref
   * counts, free blocks, handles). Call only while the loop thread is not running a step (tests).
   */
  public void checkInvariants() {
    scheduler.checkInvariants();
  }

  /** True when no request is queued, running or in an inbox. */
  public boolean idle() {
    return live.isEmpty() && submissions.isEmpty() && scheduler.idle();
  }

  Scheduler scheduler() {
    return scheduler;
  }

  /** The KV cache this loop schedules over. */
  public KvCacheManager kvCache() {
    return kv;
  }
}
