package io.kvant.engine.forward;

import io.kvant.engine.kv.KvStore;
import io.kvant.engine.model.LlamaConfig;
import java.util.function.IntConsumer;

/**
 * One forward step of a model version on some backend: the seam between the scheduler and the
 * hardware. {@link Transformer} is the CPU implementation; the CUDA backend ({@code engine-cuda}
 * module) is the other. Both read and write keys and values through the {@link KvStore} that the
 * {@link io.kvant.engine.kv.KvCacheManager} was built with (host blocks or device blocks), so the
 * manager stays the owner of allocation, prefix caching and preemption.
 *
 * <p>Contract of {@link #forward}: the logits of {@code batch.logitRows()}, row-major {@code
 * [logitRows.length][vocabSize]}; every row's K and V are stored at its position before attention,
 * so a prefill chunk attends causally to itself. Driven by one thread at a time.
 */
public interface ForwardPass extends AutoCloseable {
  /** The model's shape. */
  LlamaConfig config();

  /**
   * Runs one step and returns the logits of the batch's logit rows.
   *
   * @throws IllegalArgumentException if a token is outside the vocabulary or a position outside the
   *     context window, or {@code kv} is not a store this backend can read
   */
  float[] forward(Batch batch, KvStore kv);

  /** Whether {@link #forwardAndSample} samples where the logits are (only ids come back). */
  default boolean samplesOnDevice() {
    return false;
  }

  /**
   * Runs one step and samples one token per logit row where the logits live, so only token ids
   * cross back to the host.
   *
   * @param sampling one entry per logit row
   * @throws UnsupportedOperationException if {@link #samplesOnDevice()} is false
   */
  default int[] forwardAndSample(Batch batch, KvStore kv, DeviceSampling[] sampling) {
    throw new UnsupportedOperationException("this backend samples on the host");
  }

  /**
   * Calls {@code body.accept(i)} for every {@code i} in {@code [0, n)}, on the host threads this
   * forward pass computes with where it has some (the CPU transformer's compute pool, idle between
   * steps), else one after another on the caller's thread; returns when all are done and rethrows
   * the first exception. For independent host work between steps, such as sampling each row of a
   * step's logits: the bodies must not share mutable state. Not to be called from inside {@link
   * #forward}.
   */
  default void forEachOnHost(int n, IntConsumer body) {
    for (int i = 0; i < n; i++) {
      body.accept(i);
    }
  }

  /**
   * Releases what this forward pass holds beyond the heap (a device backend's copies of the
   * version's weights). The CPU transformer holds nothing: a no-op.
   */
  @Override
  default void close() {}
}
