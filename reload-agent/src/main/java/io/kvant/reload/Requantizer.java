package io.kvant.reload;

import io.kvant.engine.tensor.Tensor;
import java.util.List;

/**
 * Quantizes one full-precision matrix under a recipe. The agent calls it only for tensors that
 * changed (or for all of them when the recipe changed).
 */
public interface Requantizer {
  /** Whether {@code recipe} is known. */
  boolean knows(String recipe);

  /**
   * Whether {@code recipe} quantizes the tensor called {@code name} (false: it is served in full
   * precision).
   */
  boolean quantizes(String recipe, String name, Tensor fp);

  /**
   * Quantizes {@code fp}.
   *
   * @param calibration token sequences of the calibration prompts (methods that need activations
   *     use them; others ignore them)
   */
  Quantized quantize(String recipe, String name, Tensor fp, List<int[]> calibration);

  /**
   * A quantized tensor and how it was made (for the QBOM).
   *
   * @param tensor the tensor to serve
   * @param bits bits per code
   * @param groupSize inputs per scale (0: per channel)
   * @param scheme e.g. {@code symmetric/per_block}
   * @param method calibration method, e.g. {@code absmax}
   */
  record Quantized(Tensor tensor, int bits, int groupSize, String scheme, String method) {}
}
