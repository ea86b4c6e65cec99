package io.kvant.engine.sched;

import io.kvant.engine.forward.Transformer;
import io.kvant.engine.kv.KvGeometry;
import io.kvant.engine.model.LlamaConfig;
import io.kvant.engine.tokenizer.IncrementalDecoder;
import io.kvant.engine.tokenizer.Tokenizer;

/**
 * A {@link ServingModel} over the engine's {@link Transformer} and {@link Tokenizer}: what the
 * server builds for each loaded model version.
 */
public final class TransformerModel implements ServingModel {
  private final String versionId;
  private final Transformer transformer;
  private final Tokenizer tokenizer;

  public TransformerModel(String versionId, Transformer transformer, Tokenizer tokenizer) {
    this.versionId = versionId;
    this.transformer = transformer;
    this.tokenizer = tokenizer;
  }

  /** The tokenizer of this version. */
  public Tokenizer tokenizer() {
    return tokenizer;
  }

  /** The transformer of this version. */
  public Transformer transformer() {
    return transformer;
  }

  /** The KV cache shape this version needs (all versions sharing a cache must agree). */
  public KvGeometry kvGeometry() {
    LlamaConfig c = transformer.config();
    return new KvGeometry(c.layers(), c.kvHeads(), c.headSize());
  }

  @Override
  public String versionId() {
    return versionId;
  }

  @Override
  public ModelExecutor executor() {
    return transformer::forward;
  }

  @Override
  public int contextLength() {
    return transformer.config().contextLength();
  }

  @Override
  public int vocabSize() {
    return transformer.config().vocabSize();
  }

  @Override
  public int eosToken() {
    return tokenizer.eos();
  }

  @Override
  public TokenTextDecoder newDecoder(int[] prompt) {
    boolean startsText = prompt.length == 1 && prompt[0] == tokenizer.bos();
    IncrementalDecoder d = tokenizer.newDecoder(startsText);
    return new TokenTextDecoder() {
      @Override
      public String append(int token) {
        return d.append(token);
      }

      @Override
      public String flush() {
        return d.flush();
      }
    };
  }
}
