package io.kvant.engine.forward;

/**
 * Sees the inputs of the weight matrices during a {@link Transformer} forward pass, for calibration
 * (activation statistics for AWQ, MSE weighting, sensitivity analysis).
 *
 * <p>Contract: called on the forward thread, after the input is complete and before the matrices
 * are applied; {@code x} holds {@code rows} rows of {@code width} floats starting at index 0 and
 * must not be kept (it is a reused scratch buffer). An observer that only watches must not modify
 * it; one that simulates another engine's products (quant's {@code W8a8Simulation}: activations
 * quantized per token) may rewrite it in place, and then exactly the site's matrices read the
 * rewritten values: every site's buffer is read by nothing else after this call. A Transformer
 * built without an observer pays one null check per site.
 */
@FunctionalInterface
public interface ActivationObserver {
  /** Where in the block the activations were taken. */
  enum Site {
    /** Normed input of q, k and v (width dim). */
    ATTN_IN,
    /** Attention output, input of o (width dim). */
    ATTN_OUT,
    /** Normed input of gate and up (width dim). */
    FFN_IN,
    /** {@code silu(gate) * up}, input of down (width hidden). */
    FFN_HIDDEN,
    /** Final-normed rows whose logits are computed, input of lm_head (layer = -1). */
    HEAD_IN
  }

  void observe(int layer, Site site, float[] x, int rows, int width);
}
