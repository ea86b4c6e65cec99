package io.kvant.reload;

import io.kvant.engine.forward.Batch;
import io.kvant.engine.forward.Transformer;
import io.kvant.engine.kv.ContiguousKvStore;
import io.kvant.engine.model.LlamaConfig;
import io.kvant.engine.model.ModelWeights;
import io.kvant.engine.tensor.ComputePool;
import java.util.List;

/**
 * Compares a version's served weights with its own full-precision weights on golden prompts: at
 * every prompt position, whether the argmax tokens agree, the KL divergence KL(p_full || p_served)
 * of the next-token distributions, and that every logit is finite.
 */
final class QualityGate {
  /**
   * What the gate measured.
   *
   * @param top1 fraction of positions whose argmax agrees
   * @param meanKl mean KL divergence over positions, nats
   * @param finite whether every logit of the served weights was finite
   * @param positions positions compared
   */
  record Result(double top1, double meanKl, boolean finite, int positions) {
    boolean passes(GateSettings s) {
      return finite && positions > 0 && top1 >= s.minTop1() && meanKl <= s.maxMeanKl();
    }

    String describe(GateSettings s) {
      if (!finite) {
        return "NaN or infinite logits";
      }
      return String.format(
          "top-1 agreement %.4f (min %.4f), mean KL %.5f (max %.5f) over %d positions",
          top1, s.minTop1(), meanKl, s.maxMeanKl(), positions);
    }
  }

  private QualityGate() {}

  static Result run(
      LlamaConfig config,
      ModelWeights full,
      ModelWeights served,
      List<int[]> prompts,
      ComputePool pool) {
    int agree = 0;
    int positions = 0;
    double kl = 0;
    boolean finite = true;
    int vocab = config.vocabSize();
    for (int[] p : prompts) {
      int n = Math.min(p.length, config.contextLength());
      if (n == 0) {
        continue;
      }
      float[] a = logits(config, full, p, n, pool);
      float[] b = full == served ? a : logits(config, served, p, n, pool);
      for (int i = 0; i < n; i++) {
        int off = i * vocab;
        for (int j = 0; j < vocab; j++) {
          if (!Float.isFinite(b[off + j])) {
            finite = false;
          }
        }
        if (!finite) {
          return new Result(0, Double.POSITIVE_INFINITY, false, positions);
        }
        if (argmax(a, off, vocab) == argmax(b, off, vocab)) {
          agree++;
        }
        kl += kl(a, b, off, vocab);
        positions++;
      }
    }
    return new Result(
        positions == 0 ? 0 : (double) agree / positions,
        positions == 0 ? 0 : kl / positions,
        finite,
        positions);
  }

  private static float[] logits(
      LlamaConfig c, ModelWeights w, int[] tokens, int n, ComputePool pool) {
    Transformer t = new Transformer(c, w, pool);
    ContiguousKvStore kv = new ContiguousKvStore(c.layers(), c.kvHeads(), c.headSize(), n, 1);
    int slot = kv.acquire();
    int[] pos = new int[n];
    int[] seqs = new int[n];
    int[] rows = new int[n];
    for (int i = 0; i < n; i++) {
      pos[i] = i;
      seqs[i] = slot;
      rows[i] = i;
    }
    return t.forward(new Batch(java.util.Arrays.copyOf(tokens, n), pos, seqs, rows), kv);
  }

  private static int argmax(float[] x, int off, int n) {
    int best = 0;
    for (int i = 1; i < n; i++) {
      if (x[off + i] > x[off + best]) {
        best = i;
      }
    }
    return best;
  }

  /** KL(softmax(p) || softmax(q)) in nats, computed in double. */
  static double kl(float[] p, float[] q, int off, int n) {
    double pm = Double.NEGATIVE_INFINITY;
    double qm = Double.NEGATIVE_INFINITY;
    for (int i = 0; i < n; i++) {
      pm = Math.max(pm, p[off + i]);
      qm = Math.max(qm, q[off + i]);
    }
    double ps = 0;
    double qs = 0;
    for (int i = 0; i < n; i++) {
      ps += Math.exp(p[off + i] - pm);
      qs += Math.exp(q[off + i] - qm);
    }
    double lps = Math.log(ps);
    double lqs = Math.log(qs);
    double kl = 0;
    for (int i = 0; i < n; i++) {
      double lp = p[off + i] - pm - lps;
      double lq = q[off + i] - qm - lqs;
      kl += Math.exp(lp) * (lp - lq);
    }
    return Math.max(0, kl);
  }
}
