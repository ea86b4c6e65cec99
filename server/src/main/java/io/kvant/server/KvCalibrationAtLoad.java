package io.kvant.server;

import io.kvant.engine.forward.Transformer;
import io.kvant.engine.kv.KvEncoding;
import io.kvant.engine.kv.KvScales;
import io.kvant.engine.model.LlamaConfig;
import io.kvant.engine.model.Model;
import io.kvant.engine.tensor.ComputePool;
import io.kvant.quant.quantize.Calibration;
import io.kvant.quant.quantize.KvCalibration;

/**
 * The calibration pass of the centered KV encodings ({@code centered-mse}, {@code centered-qmse}),
 * run by {@code serve} once at start on the CPU: the keys' means before RoPE and the queries'
 * second moments of the model being served, over the built-in calibration text (the pass {@code
 * kvant eval --kv-encoding centered-qmse} runs, there on the full-precision model).
 *
 * <p>Why at load and not in the artifact: the statistics are a few floats per (layer, KV head,
 * channel) and a pass over 256-token chunks of the text costs one prefill of each, seconds for the
 * models served on a CPU here; carrying them in a version folder would need a new artifact file,
 * its parser and its checks. A version swapped in later keeps the first version's means: centering
 * is exact for any mean (the stored key is {@code k - R(t) m} and every score gets {@code q . R(t)
 * m} back), so a stale mean costs precision, never correctness.
 */
final class KvCalibrationAtLoad {
  /** Longest calibration chunk, in tokens (eval's default {@code --max-len}). */
  static final int CHUNK = 256;

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
    LlamaConfig cfg = model.config();
    Calibration cal =
        Calibration.fromText(
            Calibration.builtinCalibrationText(),
            model.tokenizer(),
            Math.min(CHUNK, cfg.contextLength()));
    try (Transformer engine = new Transformer(cfg, model.weights(), pool)) {
      return KvCalibration.measure(engine, cal.sequences(), encoding.rotates(), true);
    }
  }
}
