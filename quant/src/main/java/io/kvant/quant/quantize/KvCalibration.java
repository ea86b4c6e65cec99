package io.kvant.quant.quantize;

import io.kvant.engine.forward.Batch;
import io.kvant.engine.forward.ForwardPass;
import io.kvant.engine.forward.Transformer;
import io.kvant.engine.kv.ContiguousKvStore;
import io.kvant.engine.kv.KeyRope;
import io.kvant.engine.kv.KvScaleRecorder;
import io.kvant.engine.kv.KvScales;
import io.kvant.engine.model.LlamaConfig;
import io.kvant.engine.model.Model;
import io.kvant.engine.tensor.ComputePool;
import java.util.List;

/**
 * The calibration pass of the KV encodings that need one ({@code KvEncoding.needsScales()}): runs a
 * model over calibration sequences on F32 KV and records the maximum of every key and value channel
 * per layer and KV head, as the cache would store them (keys after RoPE; rotated when the encoding
 * rotates), and for the centered encodings the keys' means before RoPE and the queries' second
 * moments ({@code KvScaleRecorder}).
 */
public final class KvCalibration {
  /** Longest chunk of the built-in pass, in tokens (eval's default {@code --max-len}). */
  public static final int BUILTIN_CHUNK = 256;

  /** The name the built-in calibration text is recorded under. */
  public static final String BUILTIN_TEXT = "builtin-calibration-stories";

  private KvCalibration() {}

  /**
   * What {@link #builtin} measured.
   *
   * @param scales maxima (unrotated) and key moments
   * @param tokens tokens the pass ran over
   */
  public record Measured(KvScales scales, long tokens) {}

  /**
   * The statistics of the centered KV encodings ({@code centered-mse}, {@code centered-qmse}) of
   * {@code model} over the built-in calibration text in chunks of {@code min(}{@value
   * #BUILTIN_CHUNK}{@code , context length)} tokens, on the CPU: unrotated maxima, the keys' means
   * before RoPE and the queries' second moments. The one pass both {@code kvant quantize} (into
   * {@code kv_calibration.safetensors}, on the full-precision source) and {@code serve} (at load,
   * when the served folder has no such file) run, so the two give the same statistics for the same
   * weights.
   */
  public static Measured builtin(Model model, ComputePool pool) {
    LlamaConfig cfg = model.config();
    Calibration cal =
        Calibration.fromText(
            Calibration.builtinCalibrationText(),
            model.tokenizer(),
            Math.min(BUILTIN_CHUNK, cfg.contextLength()));
    try (Transformer engine = new Transformer(cfg, model.weights(), pool)) {
      return new Measured(measure(engine, cal.sequences(), false, true), cal.tokens());
    }
  }

  /**
   * The maxima of {@code engine}'s keys and values over {@code sequences} (each cut to the context
   * length).
   *
   * @param rotated measure the Walsh-Hadamard-rotated head vectors
   * @throws IllegalArgumentException if no sequence has a token
   */
  public static KvScales measure(ForwardPass engine, List<int[]> sequences, boolean rotated) {
    return measure(engine, sequences, rotated, false);
  }

  /**
   * As {@link #measure(ForwardPass, List, boolean)}, with the key moments of the centered encodings
   * when {@code keyMoments} (the model's RoPE from its config; not with {@code rotated}).
   */
  public static KvScales measure(
      ForwardPass engine, List<int[]> sequences, boolean rotated, boolean keyMoments) {
    LlamaConfig cfg = engine.config();
    int longest = 0;
    for (int[] s : sequences) {
      longest = Math.max(longest, Math.min(s.length, cfg.contextLength()));
    }
    if (longest == 0) {
      throw new IllegalArgumentException("KV calibration: no sequence has a token");
    }
    ContiguousKvStore f32 =
        new ContiguousKvStore(cfg.layers(), cfg.kvHeads(), cfg.headSize(), longest, 1);
    KvScaleRecorder recorder =
        new KvScaleRecorder(
            f32,
            cfg.layers(),
            rotated,
            keyMoments ? new KeyRope(cfg.ropeTheta(), cfg.ropeStyle()) : null);
    for (int[] s : sequences) {
      int n = Math.min(s.length, cfg.contextLength());
      if (n == 0) {
        continue;
      }
      int[] positions = new int[n];
      for (int i = 0; i < n; i++) {
        positions[i] = i;
      }
      // Only the KV writes matter: one logit row, the last.
      engine.forward(
          new Batch(java.util.Arrays.copyOf(s, n), positions, new int[n], new int[] {n - 1}),
          recorder);
    }
    return recorder.scales();
  }
}
