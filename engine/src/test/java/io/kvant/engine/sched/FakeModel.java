package io.kvant.engine.sched;

import io.kvant.engine.forward.Batch;
import io.kvant.engine.kv.KvGeometry;
import io.kvant.engine.kv.KvStore;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A model whose next-token logits are a pseudo-random function of the whole token history as read
 * back from the KV store, so any KV mix-up (a wrong prefix block, a stale block after preemption, a
 * block from another version, a missed position) changes the output. Each row writes K = V =
 * (token, position, version tag, 1); a logit row reads every past position back through {@link
 * KvStore#keyScores} with one-hot queries and checks positions and version tags.
 */
class FakeModel implements ServingModel {
  static final KvGeometry GEOMETRY = new KvGeometry(1, 1, 4);
  static final int VOCAB = 40;
  static final int EOS = 0;

  private final String version;
  private final float tag;
  private final int context;
  final AtomicInteger forwards = new AtomicInteger();

  FakeModel(String version, int tag, int context) {
    this.version = version;
    this.tag = tag;
    this.context = context;
  }

  @Override
  public String versionId() {
    return version;
  }

  @Override
  public ModelExecutor executor() {
    return this::forward;
  }

  @Override
  public int contextLength() {
    return context;
  }

  @Override
  public int vocabSize() {
    return VOCAB;
  }

  @Override
  public int eosToken() {
    return EOS;
  }

  @Override
  public TokenTextDecoder newDecoder(int[] prompt) {
    return new TokenTextDecoder() {
      @Override
      public String append(int token) {
        return String.valueOf((char) ('a' + token % 26));
      }

      @Override
      public String flush() {
        return "";
      }
    };
  }

  private float[] forward(Batch batch, KvStore kv) {
    forwards.incrementAndGet();
    for (int i = 0; i < batch.size(); i++) {
      float[] k = {batch.tokens()[i], batch.positions()[i], tag, 1f};
      kv.write(batch.seqs()[i], 0, batch.positions()[i], k, 0, k, 0);
    }
    int[] rows = batch.logitRows();
    float[] logits = new float[rows.length * VOCAB];
    for (int j = 0; j < rows.length; j++) {
      int row = rows[j];
      int len = batch.positions()[row] + 1;
      int seq = batch.seqs()[row];
      float[] tokens = new float[len];
      float[] pos = new float[len];
      float[] tags = new float[len];
      kv.keyScores(seq, 0, 0, new float[] {1, 0, 0, 0}, 0, len, tokens);
      kv.keyScores(seq, 0, 0, new float[] {0, 1, 0, 0}, 0, len, pos);
      kv.keyScores(seq, 0, 0, new float[] {0, 0, 1, 0}, 0, len, tags);
      long h = 1125899906842597L;
      for (int t = 0; t < len; t++) {
        if (pos[t] != t || tags[t] != tag) {
          throw new IllegalStateException(
              "KV of " + version + " at " + t + " holds position " + pos[t] + ", tag " + tags[t]);
        }
        h = 31 * h + (long) tokens[t];
      }
      SplittableRandom r = new SplittableRandom(h);
      for (int v = 0; v < VOCAB; v++) {
        logits[j * VOCAB + v] = (float) r.nextGaussian() * 3f;
      }
    }
    return logits;
  }
}
