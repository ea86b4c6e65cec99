package io.kvant.cuda.device;

/**
 * The device addresses the centered KV encodings ({@code KvEncoding.CENTERED_MSE}, {@code
 * CENTERED_QMSE}) pass to {@code kv_append} and the attention kernels: the keys are stored minus
 * their calibrated mean rotated to their position, {@code k - R(t) m}, and attention adds {@code q
 * . R(t) m} back to each score, both with the rotation of the same tables, so centering is exact
 * for any mean (only its precision depends on the mean).
 *
 * @param mean the keys' means before RoPE, F32 {@code [layers][kvHeads][headSize]}; 0 for none (no
 *     centering: then every other field is ignored)
 * @param momentT the queries' second moments, each {@code headSize x headSize} matrix stored
 *     transposed ({@code [layers][kvHeads][j][i] = W_ij}) for {@link CudaKernels#KV_WEIGHTED}; 0
 *     without
 * @param cos RoPE's cosines {@code [position][headSize / 2]}, the forward pass's table
 * @param sin RoPE's sines, likewise
 * @param style 0 adjacent pairs, 1 halves (as {@link CudaKernels#rope})
 * @param parts with {@code momentT}: device scratch for the weighted scale search's partial errors
 *     ({@link CudaKernels#weightedPartsBytes} for {@code partRows} rows), written by the launch
 *     before each append; 0 until {@link #withParts} gives it
 * @param partRows the rows {@code parts} holds: an append of more rows is refused
 */
public record KeyCentering(
    long mean, long momentT, long cos, long sin, int style, long parts, int partRows) {
  /** No centering. */
  public static final KeyCentering NONE = new KeyCentering(0, 0, 0, 0, 0);

  /** Centering without the weighted search's scratch ({@link #withParts} adds it). */
  public KeyCentering(long mean, long momentT, long cos, long sin, int style) {
    this(mean, momentT, cos, sin, style, 0, 0);
  }

  public KeyCentering {
    if (parts != 0 && (momentT == 0 || partRows <= 0)) {
      throw new IllegalArgumentException(
          "weighted-search scratch needs query moments and rows, got " + partRows + " rows");
    }
    if (mean != 0 && (cos == 0 || sin == 0)) {
      throw new IllegalArgumentException("centered keys need RoPE's cos and sin tables");
    }
    if (mean == 0 && momentT != 0) {
      throw new IllegalArgumentException("query moments without key means");
    }
    if (style != 0 && style != 1) {
      throw new IllegalArgumentException("rope style must be 0 or 1, got " + style);
    }
  }

  /** Whether keys are centered. */
  public boolean centered() {
    return mean != 0;
  }

  /**
   * This centering with {@code parts} as the weighted search's scratch for up to {@code rows} rows
   * of an append ({@link CudaKernels#weightedPartsBytes}{@code (rows, kvHeads)} bytes); itself when
   * keys are not weighted ({@code momentT} 0), which needs none.
   */
  public KeyCentering withParts(long parts, int rows) {
    return momentT == 0 ? this : new KeyCentering(mean, momentT, cos, sin, style, parts, rows);
  }

  /** The encoding bits it implies: {@link CudaKernels#KV_CENTERED}, {@code KV_WEIGHTED}. */
  public int bits() {
    return (mean != 0 ? CudaKernels.KV_CENTERED : 0) | (momentT != 0 ? CudaKernels.KV_WEIGHTED : 0);
  }
}
