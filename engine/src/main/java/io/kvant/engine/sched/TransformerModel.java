package io.kvant.engine.sched;

import io.kvant.engine.forward.Batch;
import io.kvant.engine.forward.DeviceSampling;
import io.kvant.engine.forward.ForwardPass;
import io.kvant.engine.kv.KvGeometry;
import io.kvant.engine.kv.KvStore;
import io.kvant.engine.model.LlamaConfig;
import io.kvant.engine.tokenizer.IncrementalDecoder;
import io.kvant.engine.tokenizer.Tokenizer;

/**
 * A {@link ServingModel} over one version's {@link ForwardPass} (the CPU transformer or the CUDA
 * backend's) and {@link Tokenizer}: what the server builds for each loaded model version. {@link
 * #close()} releases the forward pass (a device backend's weight copies) when the version retires.
 */
public final class TransformerModel implements ServingModel, AutoCloseable {
  private final String versionId;
  private final ForwardPass transformer;
  private final Tokenizer tokenizer;
  private final ModelExecutor executor;

  public TransformerModel(String versionId, ForwardPass transformer, Tokenizer tokenizer) {
    this.versionId = versionId;
    this.transformer = transformer;
    this.tokenizer = tokenizer;
    this.executor =
        new ModelExecutor() {
          @Override
          public float[] forward(Batch batch, KvStore kv) {
            return transformer.forward(batch, kv);
          }

          @Override
          public boolean samplesOnDevice() {
            return transformer.samplesOnDevice();
          }

          @Override
          public int[] forwardAndSample(Batch batch, KvStore kv, DeviceSampling[] rules) {
            return transformer.forwardAndSample(batch, kv, rules);
          }

          @Override
          public void forEachOnHost(int n, java.util.function.IntConsumer body) {
            transformer.forEachOnHost(n, body);
          }
        };
  }

  /** Releases the forward pass's resources beyond the heap (device weights); idempotent. */
  @Override
  public void close() {
    transformer.close();
  }

  /** The tokenizer of this version. */
  public Tokenizer tokenizer() {
    return tokenizer;
  }

  /** The forward pass of this version. */
  public ForwardPass transformer() {
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
    return executor;
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
