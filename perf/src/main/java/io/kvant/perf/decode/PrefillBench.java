package io.kvant.perf.decode;

import io.kvant.engine.forward.Batch;
import io.kvant.engine.forward.MatmulKernels;
import io.kvant.engine.forward.Transformer;
import io.kvant.engine.kv.ContiguousKvStore;
import io.kvant.engine.model.LlamaConfig;
import io.kvant.engine.model.Model;
import io.kvant.engine.tensor.ComputePool;
import java.util.Arrays;
import java.util.Random;
import java.util.function.LongSupplier;

/**
 * Prefill speed: one sequence's prompt run through the forward pass in chunks of consecutive
 * tokens, as {@link io.kvant.engine.generate.Generator} prefills (its chunk is 256 tokens), each
 * repeat into a fresh KV slot; the first prefills are untimed (JIT warm-up). Prompt tokens are
 * drawn from the vocabulary with a fixed seed: a synthetic model's figure depends on its shape, not
 * on the text. Only the last row's logits are computed, as in generation.
 */
public final class PrefillBench {
  private PrefillBench() {}

  /**
   * Outcome of a run.
   *
   * @param promptTokens tokens per prefill
   * @param chunk tokens per forward step
   * @param repeats prefills timed
   * @param seconds time of the timed prefills
   * @param threads compute threads
   */
  public record Result(int promptTokens, int chunk, int repeats, double seconds, int threads) {
    /** Prompt tokens prefilled per second. */
    public double tokensPerSecond() {
      return (double) promptTokens * repeats / seconds;
    }
  }

  /**
   * Runs {@code warmup + repeats} prefills of a {@code promptTokens}-token prompt in chunks of
   * {@code chunk} tokens and times the last {@code repeats}.
   *
   * @throws IllegalArgumentException naming the option if the prompt exceeds the model's context or
   *     a count is below 1 (warm-up below 0)
   */
  public static Result run(
      Model model,
      int promptTokens,
      int chunk,
      int repeats,
      int warmup,
      int threads,
      MatmulKernels kernels,
      LongSupplier nanoTime) {
    LlamaConfig c = model.config();
    if (promptTokens < 1 || promptTokens > c.contextLength()) {
      throw new IllegalArgumentException(
          "--prompt: must be in [1, " + c.contextLength() + "], got " + promptTokens);
    }
    if (chunk < 1) {
      throw new IllegalArgumentException("--chunk: must be >= 1, got " + chunk);
    }
    if (repeats < 1 || warmup < 0) {
      throw new IllegalArgumentException(
          "--repeats must be >= 1 and --warmup >= 0, got " + repeats + " and " + warmup);
    }
    Random rnd = new Random(42);
    int[] prompt = new int[promptTokens];
    for (int i = 0; i < promptTokens; i++) {
      prompt[i] = rnd.nextInt(c.vocabSize());
    }
    try (ComputePool pool = new ComputePool(threads)) {
      Transformer t = new Transformer(c, model.weights(), pool, null, kernels);
      ContiguousKvStore kv =
          new ContiguousKvStore(c.layers(), c.kvHeads(), c.headSize(), promptTokens, 1);
      long timed = 0;
      for (int i = 0; i < warmup + repeats; i++) {
        int slot = kv.acquire();
        long start = nanoTime.getAsLong();
        for (int from = 0; from < promptTokens; from += chunk) {
          int to = Math.min(promptTokens, from + chunk);
          t.forward(Batch.ofSequence(slot, from, Arrays.copyOfRange(prompt, from, to)), kv);
        }
        long end = nanoTime.getAsLong();
        kv.release(slot);
        if (i >= warmup) {
          timed += end - start;
        }
      }
      return new Result(promptTokens, chunk, repeats, timed / 1e9, threads);
    }
  }
}
