package io.kvant.perf.decode;

import io.kvant.engine.forward.Batch;
import io.kvant.engine.forward.Transformer;
import io.kvant.engine.model.LlamaConfig;
import io.kvant.engine.model.Model;
import java.util.function.LongSupplier;

/**
 * Aggregate decode speed of {@code concurrency} sequences decoded together: each forward step is
 * one {@link Batch} holding the next token of every sequence (as continuous batching runs steady
 * state decode), so every weight matrix is streamed once per step for all of them. Prefill is one
 * BOS token per sequence; the first {@code warmup} steps (JIT) are not timed.
 */
public final class BatchDecodeBench {
  private BatchDecodeBench() {}

  /**
   * Outcome of one concurrency level.
   *
   * @param concurrency sequences per step
   * @param steps timed steps
   * @param seconds time of the timed steps
   */
  public record Result(int concurrency, int steps, double seconds) {
    /** Tokens per second summed over all sequences. */
    public double tokensPerSecond() {
      return (double) concurrency * steps / seconds;
    }

    /** Milliseconds per step (the per-token latency each sequence sees). */
    public double msPerStep() {
      return 1e3 * seconds / steps;
    }
  }

  /**
   * Runs {@code warmup + steps} batched decode steps of {@code concurrency} sequences on {@code t},
   * built once for every level (its weights repacked once, before the first level; a 1B model's
   * repack took about a third of a three-level run's wall time when every level built its own).
   * Each level starts from {@code bos} in a fresh KV store of the given kind.
   */
  public static Result run(
      Transformer t,
      int bos,
      int concurrency,
      int steps,
      int warmup,
      BenchKv kvStore,
      LongSupplier nanoTime) {
    if (concurrency < 1) {
      throw new IllegalArgumentException("--concurrency: must be >= 1, got " + concurrency);
    }
    LlamaConfig c = t.config();
    int total = warmup + steps;
    if (total + 1 > c.contextLength()) {
      throw new IllegalArgumentException(
          "--tokens: " + total + " steps exceed the context of " + c.contextLength());
    }
    BenchKv.Slots kv = kvStore.open(c, concurrency, total + 1);
    int[] slots = new int[concurrency];
    int[] tokens = new int[concurrency];
    int[] positions = new int[concurrency];
    int[] rows = new int[concurrency];
    for (int i = 0; i < concurrency; i++) {
      slots[i] = kv.acquire();
      tokens[i] = bos;
      rows[i] = i;
    }
    float[] logits =
        t.forward(new Batch(tokens.clone(), positions.clone(), slots, rows), kv.store());
    long start = 0;
    for (int step = 0; step < total; step++) {
      if (step == warmup) {
        start = nanoTime.getAsLong();
      }
      for (int i = 0; i < concurrency; i++) {
        tokens[i] = DecodeBench.argmax(logits, i * c.vocabSize(), c.vocabSize());
        positions[i] = step + 1;
      }
      logits = t.forward(new Batch(tokens.clone(), positions.clone(), slots, rows), kv.store());
    }
    double seconds = (nanoTime.getAsLong() - start) / 1e9;
    for (int slot : slots) {
      kv.release(slot);
    }
    return new Result(concurrency, steps, seconds);
  }

  /** The token a benchmark's sequences start from: the model's BOS (0 if it has none). */
  public static int bos(Model model) {
    return Math.max(0, model.tokenizer().bos());
  }
}
