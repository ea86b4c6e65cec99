package io.kvant.engine.generate;

import io.kvant.engine.forward.Batch;
import io.kvant.engine.forward.ComputeBackend;
import io.kvant.engine.forward.ForwardPass;
import io.kvant.engine.forward.Transformer;
import io.kvant.engine.kv.ContiguousKvStore;
import io.kvant.engine.kv.EvictionPolicyKind;
import io.kvant.engine.kv.KvCacheConfig;
import io.kvant.engine.kv.KvCacheManager;
import io.kvant.engine.kv.KvCacheType;
import io.kvant.engine.kv.KvGeometry;
import io.kvant.engine.kv.KvStore;
import io.kvant.engine.model.LlamaConfig;
import io.kvant.engine.sample.Sampler;
import io.kvant.engine.sample.SamplingParams;
import io.kvant.engine.sample.StopMatcher;
import io.kvant.engine.tokenizer.IncrementalDecoder;
import io.kvant.engine.tokenizer.Tokenizer;
import java.util.Arrays;
import java.util.List;
import java.util.function.Consumer;

/**
 * Generates one sequence at a time: the engine without a scheduler, for the command line, tests and
 * benchmarks of single-stream speed. The server batches many sequences through the same {@link
 * Transformer} instead.
 */
public final class Generator {
  /** Prompt tokens per prefill forward step. */
  private static final int PREFILL_CHUNK = 256;

  private final ForwardPass transformer;
  private final Tokenizer tokenizer;
  private final ComputeBackend backend;

  /** A generator on the CPU transformer, with a contiguous F32 KV store per request. */
  public Generator(Transformer transformer, Tokenizer tokenizer) {
    this(transformer, tokenizer, null);
  }

  /**
   * A generator on any backend's forward pass; the request's KV lives in a paged cache of the
   * backend's storage and default type (device memory for the CUDA backend).
   */
  public Generator(ForwardPass forward, Tokenizer tokenizer, ComputeBackend backend) {
    this.transformer = forward;
    this.tokenizer = tokenizer;
    this.backend = backend;
  }

  /**
   * Generates up to {@code maxTokens} tokens after {@code prompt}.
   *
   * @param onText receives the text as it becomes final (whole characters, never part of a stop
   *     sequence); may be a no-op
   * @throws IllegalArgumentException if the prompt is empty or does not fit the context window
   */
  public GenerationResult generate(
      int[] prompt,
      int maxTokens,
      SamplingParams params,
      List<String> stops,
      Consumer<String> onText) {
    LlamaConfig c = transformer.config();
    if (prompt.length == 0) {
      throw new IllegalArgumentException("prompt: must not be empty");
    }
    if (prompt.length >= c.contextLength()) {
      throw new IllegalArgumentException(
          "prompt: "
              + prompt.length
              + " tokens do not fit the context window of "
              + c.contextLength());
    }
    // KV sized for this request only: a model's full context can be far larger than needed.
    int capacity = (int) Math.min(c.contextLength(), (long) prompt.length + Math.max(1, maxTokens));
    KvStore kv;
    int slot;
    KvCacheManager paged = null;
    ContiguousKvStore contiguous = null;
    if (backend == null) {
      contiguous = new ContiguousKvStore(c.layers(), c.kvHeads(), c.headSize(), capacity, 1);
      kv = contiguous;
      slot = contiguous.acquire();
    } else {
      KvGeometry g = new KvGeometry(c.layers(), c.kvHeads(), c.headSize());
      KvCacheType type = backend.defaultKvType();
      long bytes = (long) (capacity + 16) * g.bytesPerToken(type);
      paged =
          new KvCacheManager(
              g,
              new KvCacheConfig(type, 16, bytes, EvictionPolicyKind.LRU, false),
              backend.kvStorage());
      slot = paged.open(paged.findCachedPrefix(prompt, prompt.length, ""), capacity);
      kv = paged.store();
    }
    try {
      float[] logits = null;
      for (int start = 0; start < prompt.length; start += PREFILL_CHUNK) {
        int end = Math.min(prompt.length, start + PREFILL_CHUNK);
        logits =
            transformer.forward(
                Batch.ofSequence(slot, start, Arrays.copyOfRange(prompt, start, end)), kv);
      }
      Sampler sampler = new Sampler(params, prompt);
      StopMatcher stop = new StopMatcher(stops);
      // The dummy-prefix space is dropped only when the output starts the text (prompt = BOS
      // alone).
      boolean startsText = prompt.length == 1 && prompt[0] == tokenizer.bos();
      IncrementalDecoder decoder = tokenizer.newDecoder(startsText);
      StringBuilder text = new StringBuilder();
      int[] out = new int[Math.max(0, maxTokens)];
      int count = 0;
      int pos = prompt.length;
      FinishReason reason = FinishReason.LENGTH;
      while (count < maxTokens) {
        int token = sampler.sample(logits, 0, c.vocabSize());
        if (token == tokenizer.eos()) {
          reason = FinishReason.STOP;
          break;
        }
        out[count++] = token;
        String piece = stop.append(decoder.append(token));
        text.append(piece);
        onText.accept(piece);
        if (stop.stopped()) {
          reason = FinishReason.STOP;
          break;
        }
        if (count == maxTokens || pos >= capacity) {
          reason = FinishReason.LENGTH;
          break;
        }
        logits = transformer.forward(Batch.ofSequence(slot, pos, token), kv);
        pos++;
      }
      if (!stop.stopped()) {
        String tail = stop.append(decoder.flush());
        tail += stop.finish();
        text.append(tail);
        onText.accept(tail);
      }
      return new GenerationResult(
          Arrays.copyOf(out, count), text.toString(), reason, prompt.length);
    } finally {
      if (contiguous != null) {
        contiguous.release(slot);
      } else {
        paged.free(slot);
        if (kv instanceof AutoCloseable closeable) {
          try {
            closeable.close(); // a device pool frees its memory
          } catch (Exception e) {
            throw new IllegalStateException("closing the KV store failed", e);
          }
        }
      }
    }
  }
}
