package io.kvant.engine.sched;

import io.kvant.engine.forward.Batch;
import io.kvant.engine.forward.DeviceSampling;
import io.kvant.engine.kv.KvStore;
import java.util.function.IntConsumer;

/**
 * Runs one forward step of one model version: a {@link io.kvant.engine.forward.ForwardPass} (CPU or
 * CUDA) in production, a fake in scheduler tests. {@link #forward} returns the logits of {@code
 * batch.logitRows()}, row-major {@code [logitRows.length][vocabSize]}.
 */
@FunctionalInterface
public interface ModelExecutor {
  float[] forward(Batch batch, KvStore kv);

  /** Whether {@link #forwardAndSample} samples where the logits are (only ids come back). */
  default boolean samplesOnDevice() {
    return false;
  }

  /** One step, sampling each logit row by its rule on the device; see {@link #samplesOnDevice}. */
  default int[] forwardAndSample(Batch batch, KvStore kv, DeviceSampling[] rules) {
    throw new UnsupportedOperationException("this executor samples on the host");
  }

  /**
   * Calls {@code body.accept(i)} for every {@code i} in {@code [0, n)}, possibly in parallel on the
   * forward pass's host threads ({@link io.kvant.engine.forward.ForwardPass#forEachOnHost});
   * returns when all are done. One after another by default.
   */
  default void forEachOnHost(int n, IntConsumer body) {
    for (int i = 0; i < n; i++) {
      body.accept(i);
    }
  }
}
