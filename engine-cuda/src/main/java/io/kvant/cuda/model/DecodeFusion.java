package io.kvant.cuda.model;

/**
 * How few-row decode steps group their launches (perf/RESULTS.md has the measurements that chose
 * the default).
 */
public enum DecodeFusion {
  /** Every kernel on its own: RMSNorm, each product, SwiGLU (the reference). */
  OFF,
  /**
   * The products that share an input in one launch ({@code mgemv_fused}: q, k and v; gate and up
   * with SwiGLU in the epilogue), after a separate RMSNorm; except where the launch runs a staged
   * split ({@code CudaKernels.MqVariant#staged}: one row under the default {@code
   * MgemvSplits.MQ_STAGED}), which converts its whole input once per block anyway, so the norm is
   * folded in there (8B single-stream on an H100, session 18: INT4 284.8 -> 311.4 tok/s, FP8 247.8
   * -> 264.0 with the staged products).
   */
  PRODUCTS,
  /**
   * As {@link #PRODUCTS}, with the RMSNorm folded into them: each warp multiplies the activations
   * it loads by the norm weights, sums their squares on the way (it reads every column once) and
   * scales its dot products by the inverse RMS at the end, so the norm has no launch of its own.
   * Slower than {@link #PRODUCTS} on an H200 (8B, batch 1, one run: BF16 192.1 -> 189.1 tok/s, INT4
   * 274.7 -> 262.5, FP8 259.3 -> 244.9): the weight loop is bound by instruction issue for coded
   * weights, and the extra loads and multiplies per activation cost more than the norm launch,
   * which programmatic dependent launch already overlaps. Its first form staged the normalised
   * input in each block's shared memory and was slower still. Kept for comparing.
   */
  PRODUCTS_AND_NORM,
  /**
   * As {@link #PRODUCTS}, and for steps whose rows are of distinct sequences with a KV cache of
   * token scales or none ({@code CudaKernels.attentionDecodeTakes}) RoPE, the KV append, the tiled
   * attention and its merge in one launch per layer ({@code attention_decode}) instead of two or
   * three; other steps as {@link #PRODUCTS}. The default in sessions 24-27: 8B decode on an H100,
   * same weights, one run per format (perf/RESULTS.md): one sequence INT4 309.8 -> 320.5 tok/s, FP8
   * 263.1 -> 280.0 (70% of the copy bandwidth); 16 and 64 sequences +2.3-4.3%; 1,024-token prompts
   * +3.3-5.9%.
   */
  PRODUCTS_AND_ATTENTION,
  /**
   * As {@link #PRODUCTS_AND_ATTENTION}, with that launch's attention by a warp per range of 32
   * positions ({@code attention_rows}, merged within the block) where the model's heads and KV
   * cache allow ({@code CudaKernels.attentionRowsTakes}: head size 32, 64 or 128, at most four
   * query heads per kv head, unscaled KV or INT8/FP8 with token scales or keys per channel),
   * compiled for the head size and KV type; other steps as {@link #PRODUCTS_AND_ATTENTION}. Why: at
   * one row attention_decode's time is a chain of barriers and a global merge with one warp in four
   * computing (perf/RESULTS.md, session 27). The default in sessions 28-39: 8B decode on an H100,
   * INT4 g128 one sequence 311.7 -> 366.6 tok/s, FP8 259.1 -> 299.3, FP8 W8A8 at 256 sequences
   * 16,837 -> 20,982 (perf/RESULTS.md, session 28). Since session 39 each warp's first tile of
   * earlier positions is loaded before the wait for the q/k/v product: one row on an H200, INT4
   * g128 429.1 -> 443.1 and 437.2 -> 441.0 tok/s (both orders), FP8 1.012-1.019x.
   */
  PRODUCTS_AND_WARP_ATTENTION,
  /**
   * As {@link #PRODUCTS_AND_WARP_ATTENTION}, with a block per query head instead of per kv head
   * where the step's rows are few ({@code CudaKernels.rowsPerHeadSuits}: F16/BF16 KV or INT8/FP8
   * with token scales, at most two (row, query head) pairs per multiprocessor): each block walks
   * the kv head's keys and values for one query vector, so a warp's arithmetic per tile is a
   * quarter of a four-head block's (Llama-3-8B at one row and a short context: 32 blocks instead of
   * 8); other steps as {@link #PRODUCTS_AND_WARP_ATTENTION}. The default since session 40: 8B one
   * row, prompt 128, on an H100, both orders in one process each (perf/RESULTS.md): INT4 g128
   * ({@code mq-wide-units}) 410.1 -> 419.7 and 412.0 -> 425.9 tok/s, FP8 306.5 -> 320.3 and 307.0
   * -> 313.9; level at a 1,024-token prompt (363.3 -> 367.7, 367.8 -> 367.0).
   */
  PRODUCTS_AND_HEAD_ATTENTION;

  /** The mode serving uses. */
  public static final DecodeFusion DEFAULT = PRODUCTS_AND_HEAD_ATTENTION;

  /** Whether decode steps take RoPE, the KV append and attention in one launch where they can. */
  public boolean attentionInOneLaunch() {
    return this == PRODUCTS_AND_ATTENTION
        || this == PRODUCTS_AND_WARP_ATTENTION
        || this == PRODUCTS_AND_HEAD_ATTENTION;
  }
}
