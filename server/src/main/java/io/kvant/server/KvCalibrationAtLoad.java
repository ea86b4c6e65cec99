package io.kvant.server;

import io.kvant.engine.kv.KvEncoding;
import io.kvant.engine.kv.KvScales;
import io.kvant.engine.model.Model;
import io.kvant.engine.tensor.ComputePool;
import io.kvant.quant.quantize.KvCalibration;

/**
 * The calibration pass of the centered KV encodings ({@code centered-mse}, {@code centered-qmse}),
 * run by {@code serve} once at start on the CPU when the served model carries no {@code
 * kv_calibration.safetensors} (a GGUF or Hugging Face model, or a folder quantized with {@code
 * --no-kv-calibration}): the keys' means before RoPE and the queries' second moments of the model
 * being served, over the built-in calibration text ({@link KvCalibration#builtin}, the pass {@code
 * kvant quantize} stores in its folder).
 *
 * <p>A version swapped in later keeps the first version's means: centering is exact for any mean
 * (the stored key is {@code k - R(t) m} and every score gets {@code q . R(t) m} back), so a stale
 * mean costs precision, never correctness.
 */
final class KvCalibrationAtLoad {
  private KvCalibrationAtLoad() {}

  /**
   * The statistics {@code encoding} needs, from {@code model} over the built-in calibration text.
   *
   * @throws IllegalArgumentException if {@code encoding} needs static scales (not served) or needs
   *     nothing
   */
  static KvScales measure(Model model, ComputePool pool, KvEncoding encoding) {
    if (!encoding.centersKeys()) {
      throw new IllegalArgumentException(
          encoding.optionName() + ": only the centered encodings are calibrated at load");
    }
    return KvCalibration.builtin(model, pool).scales();
  }
}
