package io.kvant.perf.load;

import io.kvant.client.Chunk;
import io.kvant.client.FinishReason;
import io.kvant.client.GenerateParams;
import io.kvant.client.KvantClient;
import io.kvant.client.KvantException;
import io.kvant.client.TokenStream;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Queue;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.function.LongSupplier;

/**
 * Sends streaming generation requests through the client SDK and records what each one saw.
 *
 * <p>Closed loop: {@code concurrency} users, each sending its next request as soon as the previous
 * one ends, so load adapts to the server (throughput at a given concurrency). Open loop: requests
 * start at gamma/Poisson arrival times ({@link Arrivals}) whether or not earlier ones finished
 * (latency at a given offered rate; the closed loop hides queueing that real traffic meets),
 * optionally capped at {@code concurrency} in flight. Either way the run stops sending at the
 * request count or the duration, whichever comes first, and waits for requests in flight. Warm-up
 * requests run first, closed loop, and are not recorded.
 *
 * <p>Per request (streaming, token ids asked so tokens can be counted per chunk): TTFT is the time
 * to the first chunk carrying output, each later output chunk adds one inter-token gap (a chunk of
 * several tokens is one gap, as vLLM records it), and the end is the last chunk. Requests run on
 * virtual threads. Times come from the injected {@code nanoTime}.
 */
public final class LoadGenerator {
  /** Progress callbacks; called from several threads. */
  public interface Listener {
    /** The measured run starts (after warm-up) at {@code nanos} of the generator's clock. */
    default void started(long nanos) {}

    /** A request ended; {@code fraction} is the estimated part of the run done. */
    default void progress(int done, int failed, double fraction) {}
  }

  /**
   * A finished run.
   *
   * @param records per request, by index
   * @param startNanos when the measured run started, on the generator's clock
   * @param durationS from the start to the last request's end
   */
  public record Run(List<RequestRecord> records, long startNanos, double durationS) {}

  private final KvantClient client;
  private final LoadConfig cfg;
  private final PromptSource prompts;
  private final LongSupplier nanoTime;

  public LoadGenerator(
      KvantClient client, LoadConfig cfg, PromptSource prompts, LongSupplier nanoTime) {
    this.client = client;
    this.cfg = cfg;
    this.prompts = prompts;
    this.nanoTime = nanoTime;
  }

  /** Runs warm-up then the measured load; blocks until every request has ended. */
  public Run run(Listener listener) throws InterruptedException {
    if (cfg.warmup() > 0) {
      closedLoop(
          -cfg.warmup(),
          cfg.warmup(),
          Long.MAX_VALUE,
          new ConcurrentLinkedQueue<>(),
          0,
          new Listener() {});
    }
    long start = nanoTime.getAsLong();
    listener.started(start);
    long end = cfg.duration().map(d -> start + d.toNanos()).orElse(Long.MAX_VALUE);
    int count = cfg.requests() > 0 ? cfg.requests() : Integer.MAX_VALUE;
    Queue<RequestRecord> records = new ConcurrentLinkedQueue<>();
    if (cfg.openLoop()) {
      openLoop(count, end, records, start, listener);
    } else {
      closedLoop(0, count, end, records, start, listener);
    }
    long last = start;
    for (RequestRecord r : records) {
      last = Math.max(last, start + (long) ((r.startMs() + r.e2eMs()) * 1e6));
    }
    List<RequestRecord> sorted = new ArrayList<>(records);
    sorted.sort(Comparator.comparingInt(RequestRecord::index));
    long endNanos = records.isEmpty() ? nanoTime.getAsLong() : last;
    double duration = Math.max(1e-9, (endNanos - start) / 1e9);
    return new Run(List.copyOf(sorted), start, duration);
  }

  private void closedLoop(
      int firstIndex, int count, long end, Queue<RequestRecord> out, long start, Listener listener)
      throws InterruptedException {
    AtomicInteger next = new AtomicInteger();
    AtomicInteger done = new AtomicInteger();
    AtomicInteger failed = new AtomicInteger();
    List<Thread> users = new ArrayList<>();
    for (int u = 0; u < cfg.concurrency(); u++) {
      users.add(
          Thread.ofVirtual()
              .name("kvant-bench-user-" + u)
              .start(
                  () -> {
                    while (nanoTime.getAsLong() < end) {
                      int i = next.getAndIncrement();
                      if (i >= count) {
                        return;
                      }
                      RequestRecord r = execute(firstIndex + i, start, nanoTime.getAsLong());
                      out.add(r);
                      report(listener, r, done, failed, count, start, end);
                    }
                  }));
    }
    joinAll(users);
  }

  private void openLoop(
      int count, long end, Queue<RequestRecord> out, long start, Listener listener)
      throws InterruptedException {
    Arrivals arrivals =
        new Arrivals(cfg.rate(), cfg.burstiness(), new SplittableRandom(cfg.seed()));
    Semaphore inFlight = cfg.concurrency() > 0 ? new Semaphore(cfg.concurrency()) : null;
    AtomicInteger done = new AtomicInteger();
    AtomicInteger failed = new AtomicInteger();
    List<Thread> requests = new ArrayList<>();
    double at = 0;
    for (int i = 0; i < count; i++) {
      long due = start + (long) (at * 1e9);
      if (due >= end) {
        break;
      }
      for (long now = nanoTime.getAsLong(); now < due; now = nanoTime.getAsLong()) {
        LockSupport.parkNanos(due - now);
        if (Thread.interrupted()) {
          throw new InterruptedException();
        }
      }
      if (inFlight != null) {
        inFlight.acquire();
      }
      int index = i;
      long dispatched = nanoTime.getAsLong();
      requests.add(
          Thread.ofVirtual()
              .name("kvant-bench-req-" + i)
              .start(
                  () -> {
                    try {
                      RequestRecord r = execute(index, start, dispatched);
                      out.add(r);
                      report(listener, r, done, failed, count, start, end);
                    } finally {
                      if (inFlight != null) {
                        inFlight.release();
                      }
                    }
                  }));
      at += arrivals.nextGapSeconds();
    }
    joinAll(requests);
  }

  private void report(
      Listener listener,
      RequestRecord r,
      AtomicInteger done,
      AtomicInteger failed,
      int count,
      long start,
      long end) {
    int d = done.incrementAndGet();
    int f = r.ok() ? failed.get() : failed.incrementAndGet();
    double byCount = count == Integer.MAX_VALUE ? 0 : (double) d / count;
    double byTime =
        end == Long.MAX_VALUE ? 0 : (double) (nanoTime.getAsLong() - start) / (end - start);
    listener.progress(d, f, Math.min(1, Math.max(byCount, byTime)));
  }

  private void joinAll(List<Thread> threads) throws InterruptedException {
    // Requests end by their deadline; the margin bounds the wait if a call hangs anyway.
    long limit = cfg.deadline().toNanos() + TimeUnit.SECONDS.toNanos(30);
    long waitUntil = System.nanoTime() + limit;
    for (Thread t : threads) {
      long left = waitUntil - System.nanoTime();
      if (left <= 0 || !t.join(java.time.Duration.ofNanos(left))) {
        throw new IllegalStateException("requests still running past their deadline");
      }
    }
  }

  /**
   * Sends request {@code index} and records it relative to {@code runStart}. Latencies count from
   * {@code sentNanos}: in the open loop the dispatcher's clock reading when it launched the
   * request, so a request whose thread starts late is charged for the delay (no coordinated
   * omission).
   */
  RequestRecord execute(int index, long runStart, long sentNanos) {
    PromptSource.Item item = prompts.get(index);
    GenerateParams.Builder b =
        GenerateParams.builder()
            .prompt(item.prompt())
            .maxTokens(item.maxTokens())
            .temperature(cfg.temperature())
            .returnTokenIds(true);
    if (cfg.topP() > 0) {
      b.topP(cfg.topP());
    }
    if (cfg.topK() > 0) {
      b.topK(cfg.topK());
    }
    if (!cfg.model().isEmpty()) {
      b.model(cfg.model());
    }
    GenerateParams params = b.build();
    long t0 = sentNanos;
    double startMs = (t0 - runStart) / 1e6;
    long first = -1;
    long prev = -1;
    long lastChunk = t0;
    double[] itl = new double[16];
    int gaps = 0;
    int tokens = 0;
    int promptTokens = 0;
    int cachedPromptTokens = 0;
    String version = "";
    FinishReason finish = null;
    try (TokenStream stream = client.stream(params)) {
      for (int guard = 0; stream.hasNext() && guard < 1_000_000; guard++) {
        Chunk c = stream.next();
        long now = nanoTime.getAsLong();
        lastChunk = now;
        version = c.modelVersion();
        int n = c.tokenIds().isEmpty() && !c.text().isEmpty() ? 1 : c.tokenIds().size();
        if (n > 0) {
          tokens += n;
          if (first < 0) {
            first = now;
          } else {
            if (gaps == itl.length) {
              itl = java.util.Arrays.copyOf(itl, gaps * 2);
            }
            itl[gaps++] = (now - prev) / 1e6;
          }
          prev = now;
        }
        if (c.isLast()) {
          finish = c.finishReason();
          if (c.usage().completionTokens() > 0) {
            tokens = c.usage().completionTokens();
          }
          promptTokens = c.usage().promptTokens();
          cachedPromptTokens = c.usage().cachedPromptTokens();
        }
      }
    } catch (KvantException e) {
      return failure(index, startMs, e.code().name(), first, t0, nanoTime.getAsLong(), version);
    } catch (RuntimeException e) {
      return failure(
          index, startMs, e.getClass().getSimpleName(), first, t0, nanoTime.getAsLong(), version);
    }
    boolean ok = finish == FinishReason.STOP || finish == FinishReason.LENGTH;
    return new RequestRecord(
        index,
        startMs,
        ok,
        ok ? "" : "finish:" + finish,
        first < 0 ? -1 : (first - t0) / 1e6,
        (lastChunk - t0) / 1e6,
        promptTokens,
        cachedPromptTokens,
        tokens,
        java.util.Arrays.copyOf(itl, gaps),
        version);
  }

  private static RequestRecord failure(
      int index, double startMs, String error, long first, long t0, long now, String version) {
    return new RequestRecord(
        index,
        startMs,
        false,
        error,
        first < 0 ? -1 : (first - t0) / 1e6,
        (now - t0) / 1e6,
        0,
        0,
        0,
        new double[0],
        version);
  }
}
