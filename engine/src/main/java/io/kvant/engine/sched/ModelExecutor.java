package io.kvant.engine.sched;

import io.kvant.engine.forward.Batch;
import io.kvant.engine.kv.KvStore;

/**
 * Runs one forward step of one model version: {@code Transformer::forward} in production, a fake in
 * scheduler tests. Returns the logits of {@code batch.logitRows()}, row-major {@code
 * [logitRows.length][vocabSize]}.
 */
@FunctionalInterface
public interface ModelExecutor {
  float[] forward(Batch batch, KvStore kv);
}
