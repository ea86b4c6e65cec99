package io.kvant.engine.sched;

/**
 * The model version a request is pinned to at admission: how to run it and what identifies its
 * weights. Several versions can be served at once (during a hot swap); a step runs one forward per
 * version among its scheduled requests. {@link #versionId()} is part of every prefix-cache block
 * hash, so KV computed by one version is never served to another. All versions served by one {@link
 * EngineLoop} share its KV cache, so they must have the same KV geometry.
 */
public interface ServingModel {
  /** Unique id of the weights (and anything else that changes the KV, such as the encodings). */
  String versionId();

  /** Runs forward passes of this version. */
  ModelExecutor executor();

  /** Longest sequence (prompt plus generated) the model accepts. */
  int contextLength();

  /** Rows of the output head. */
  int vocabSize();

  /** End-of-sequence token id, or -1 when there is none. */
  int eosToken();

  /**
   * A fresh incremental detokenizer for the generated tokens of one request.
   *
   * @param prompt the request's prompt: generated text that continues a prompt keeps its leading
   *     space, while text that starts the sequence (the prompt is BOS alone) drops it
   */
  TokenTextDecoder newDecoder(int[] prompt);
}
