package io.kvant.perf.decode;

import io.kvant.engine.forward.Batch;
import io.kvant.engine.forward.ComputeBackend;
import io.kvant.engine.forward.DeviceSampling;
import io.kvant.engine.forward.ForwardPass;
import io.kvant.engine.kv.EvictionPolicyKind;
import io.kvant.engine.kv.KvCacheConfig;
import io.kvant.engine.kv.KvCacheManager;
import io.kvant.engine.kv.KvCacheType;
import io.kvant.engine.kv.KvGeometry;
import io.kvant.engine.model.LlamaConfig;
import io.kvant.engine.model.Model;
import java.util.Arrays;
import java.util.function.LongSupplier;

/**
 * Decode speed on a {@link ComputeBackend} (the CPU's or a GPU's): the backend's forward pass over
 * the KV cache manager's paged blocks in the backend's storage, as the server runs a model, with
 * {@code sequences} sequences decoding together from BOS, greedy, one token each per step (picked
 * on the device where the backend samples there, as the server does, else from the logits here).
 * The timed steps exclude the first (BOS) step and {@code warmup} more (JIT, kernel compilation,
 * CUDA graph capture).
 */
public final class BackendDecodeBench {
  private BackendDecodeBench() {}

  /**
   * Outcome of a run.
   *
   * @param sequences sequences decoded together
   * @param steps timed steps
   * @param seconds time of the timed steps
   * @param ids the greedy ids of sequence 0, every step's (warm-up included)
   */
  public record Result(int sequences, int steps, double seconds, int[] ids) {
    /** Aggregate decode tokens per second. */
    public double tokensPerSecond() {
      return sequences * (double) steps / seconds;
    }

    /** Milliseconds per step. */
    public double msPerStep() {
      return 1e3 * seconds / steps;
    }
  }

  /**
   * Runs {@code warmup + steps} decode steps of {@code sequences} sequences on {@code backend}.
   *
   * @throws IllegalArgumentException if the steps do not fit the model's context
   */
  public static Result run(
      Model model,
      ComputeBackend backend,
      int sequences,
      int steps,
      int warmup,
      LongSupplier nanoTime) {
    LlamaConfig c = model.config();
    int total = warmup + steps + 1;
    if (total > c.contextLength()) {
      throw new IllegalArgumentException(
          "--tokens: " + (warmup + steps) + " steps exceed the context of " + c.contextLength());
    }
    if (sequences < 1) {
      throw new IllegalArgumentException("--concurrency: must be at least 1, got " + sequences);
    }
    KvGeometry g = new KvGeometry(c.layers(), c.kvHeads(), c.headSize());
    KvCacheType type = backend.defaultKvType();
    int blockSize = 16;
    long blocksPerSeq = (total + blockSize - 1) / blockSize + 1;
    long budget = sequences * blocksPerSeq * blockSize * g.bytesPerToken(type);
    KvCacheManager kv =
        new KvCacheManager(
            g,
            new KvCacheConfig(type, blockSize, budget, EvictionPolicyKind.TINY_LFU, false),
            backend.kvStorage());
    try (ForwardPass pass = backend.load(c, model.weights())) {
      int bos = Math.max(0, model.tokenizer().bos());
      int[] seqs = new int[sequences];
      int[] tokens = new int[sequences];
      int[] positions = new int[sequences];
      int[] rows = new int[sequences];
      for (int s = 0; s < sequences; s++) {
        int[] prompt = {bos};
        // a distinct key per sequence: each computes its own cache, as distinct requests would
        seqs[s] = kv.open(kv.findCachedPrefix(prompt, 1, "bench-" + s), 1);
        tokens[s] = bos;
        rows[s] = s;
      }
      int[] ids = new int[warmup + steps];
      DeviceSampling[] greedy = new DeviceSampling[sequences];
      Arrays.fill(greedy, DeviceSampling.greedy());
      long start = 0;
      for (int step = 0; step <= warmup + steps; step++) {
        if (step == warmup + 1) {
          start = nanoTime.getAsLong();
        }
        for (int s = 0; s < sequences; s++) {
          positions[s] = step;
          if (!kv.grow(seqs[s], step + 1)) {
            throw new IllegalStateException("KV budget too small for " + sequences + " sequences");
          }
        }
        Batch batch = new Batch(tokens, positions, seqs, rows);
        if (pass.samplesOnDevice()) {
          // as the server runs a device backend: greedy on the device, only ids come back
          int[] next = pass.forwardAndSample(batch, kv.store(), greedy);
          System.arraycopy(next, 0, tokens, 0, sequences);
        } else {
          float[] logits = pass.forward(batch, kv.store());
          for (int s = 0; s < sequences; s++) {
            tokens[s] = DecodeBench.argmax(logits, s * c.vocabSize(), c.vocabSize());
          }
        }
        if (step < ids.length) {
          ids[step] = tokens[0];
        }
      }
      double seconds = (nanoTime.getAsLong() - start) / 1e9;
      return new Result(sequences, steps, seconds, ids);
    } finally {
      if (kv.store() instanceof AutoCloseable closeable) {
        try {
          closeable.close();
        } catch (Exception e) {
          throw new IllegalStateException("closing the KV store", e);
        }
      }
    }
  }
}
