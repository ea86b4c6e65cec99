package io.kvant.perf.decode;

import io.kvant.engine.forward.Batch;
import io.kvant.engine.forward.MatmulKernels;
import io.kvant.engine.forward.Transformer;
import io.kvant.engine.model.LlamaConfig;
import io.kvant.engine.model.Model;
import io.kvant.engine.model.ModelWeights;
import io.kvant.engine.tensor.ComputePool;
import java.util.function.LongSupplier;

/**
 * Single-stream decode speed: one sequence, greedy, one token per forward step, as {@link
 * io.kvant.engine.generate.Generator} runs it, but timed step by step so that prefill and the first
 * (JIT warm-up) steps are excluded.
 *
 * <p>Bytes per step: every weight matrix is streamed once per decode step except the token
 * embedding, of which one row is read (unless it is also the tied output head, then all of it is).
 * So {@code tokens/s <= bandwidth / bytesPerStep}: the bound this reports beside the measurement.
 */
public final class DecodeBench {
  private DecodeBench() {}

  /**
   * Outcome of a run.
   *
   * @param tokens decode steps timed
   * @param seconds time of the timed steps
   * @param bytesPerStep weight bytes streamed per step
   * @param weightBytes bytes of all weight matrices (a tied head counted once)
   * @param threads compute threads
   */
  public record Result(
      int tokens, double seconds, long bytesPerStep, long weightBytes, int threads) {
    /** Decode tokens per second. */
    public double tokensPerSecond() {
      return tokens / seconds;
    }

    /** Weight bytes streamed per second, GB/s (10^9). */
    public double effectiveGbPerS() {
      return tokensPerSecond() * bytesPerStep / 1e9;
    }

    /** The bandwidth-bound tokens/s at {@code gbPerS}. */
    public double boundTokensPerSecond(double gbPerS) {
      return gbPerS * 1e9 / bytesPerStep;
    }
  }

  /** Weight bytes a decode step streams. */
  public static long bytesPerStep(ModelWeights w) {
    long total = w.matrixBytes();
    if (w.output() != w.embedding()) {
      total -= w.embedding().byteSize();
      total += w.embedding().byteSize() / w.embedding().rows();
    }
    return total;
  }

  /**
   * Runs {@code warmup} decode steps after a one-token prompt (BOS), then starts the sequence again
   * and times {@code tokens} steps after its BOS: the timed steps sit at positions 1 to {@code
   * tokens} whatever the warm-up (as {@code llama-bench -p 0 -n tokens} times them), so a warm-up
   * long enough for the JIT to finish compiling does not also time attention deeper in the context.
   */
  public static Result run(
      Model model, int tokens, int warmup, int threads, LongSupplier nanoTime) {
    return run(model, tokens, warmup, threads, MatmulKernels.FLOAT, BenchKv.PAGED, nanoTime);
  }

  /**
   * {@link #run} with the given matmul kernels (weights repacked before timing starts) and KV
   * store.
   */
  public static Result run(
      Model model,
      int tokens,
      int warmup,
      int threads,
      MatmulKernels kernels,
      BenchKv kvStore,
      LongSupplier nanoTime) {
    LlamaConfig c = model.config();
    int steps = Math.max(warmup, tokens);
    if (steps + 1 > c.contextLength()) {
      throw new IllegalArgumentException(
          (tokens >= warmup ? "--tokens: " : "--warmup: ")
              + steps
              + " steps exceed the context of "
              + c.contextLength());
    }
    try (ComputePool pool = new ComputePool(threads)) {
      Transformer t = new Transformer(c, model.weights(), pool, null, kernels);
      BenchKv.Slots kv = kvStore.open(c, 1, steps + 1);
      int bos = Math.max(0, model.tokenizer().bos());
      decode(t, kv, bos, warmup, c.vocabSize(), null);
      long[] start = new long[1];
      decode(t, kv, bos, tokens, c.vocabSize(), () -> start[0] = nanoTime.getAsLong());
      double seconds = (nanoTime.getAsLong() - start[0]) / 1e9;
      return new Result(
          tokens, seconds, bytesPerStep(model.weights()), model.weights().matrixBytes(), threads);
    }
  }

  /**
   * One sequence in a fresh slot of {@code kv}: BOS, then {@code steps} greedy decode steps; {@code
   * afterPrompt} (when not null) runs between the two, where a timed run starts its clock.
   */
  private static void decode(
      Transformer t, BenchKv.Slots kv, int bos, int steps, int vocab, Runnable afterPrompt) {
    int slot = kv.acquire();
    try {
      float[] logits = t.forward(Batch.ofSequence(slot, 0, bos), kv.store());
      if (afterPrompt != null) {
        afterPrompt.run();
      }
      for (int step = 0; step < steps; step++) {
        logits = t.forward(Batch.ofSequence(slot, step + 1, argmax(logits, vocab)), kv.store());
      }
    } finally {
      kv.release(slot);
    }
  }

  static int argmax(float[] x, int n) {
    return argmax(x, 0, n);
  }

  /** The index (from {@code offset}) of the largest of {@code x[offset .. offset + n)}. */
  static int argmax(float[] x, int offset, int n) {
    int best = 0;
    for (int i = 1; i < n; i++) {
      if (x[offset + i] > x[offset + best]) {
        best = i;
      }
    }
    return best;
  }
}
