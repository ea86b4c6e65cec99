package io.kvant.quant.quantize;

import io.kvant.engine.forward.Batch;
import io.kvant.engine.forward.ForwardPass;
import io.kvant.engine.kv.ContiguousKvStore;
import io.kvant.engine.kv.KeyRope;
import io.kvant.engine.kv.KvScaleRecorder;
import io.kvant.engine.kv.KvScales;
import io.kvant.engine.model.LlamaConfig;
import java.util.List;

/**
 * The calibration pass of the KV encodings that need one ({@code KvEncoding.needsScales()}): runs a
 * model over calibration sequences on F32 KV and records the maximum of every key and value channel
 * per layer and KV head, as the cache would store them (keys after RoPE; rotated when the encoding
 * rotates), and for the centered encodings the keys' means before RoPE and the queries' second
 * moments ({@code KvScaleRecorder}).
 */
public final class KvCalibration {
  private KvCalibration() {}

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
