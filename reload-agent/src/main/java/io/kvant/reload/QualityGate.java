package io.kvant.reload;

import io.kvant.engine.forward.Batch;
import io.kvant.engine.forward.Transformer;
import io.kvant.engine.kv.ContiguousKvStore;
import io.kvant.engine.model.LlamaConfig;
import io.kvant.engine.model.ModelWeights;
import io.kvant.engine.tensor.ComputePool;
import java.util.List;

/**
 * The quality gate's measurements. {@link #run}: a version's served weights against its own
 * full-precision weights on golden prompts (quantization fidelity): at every prompt position,
 * whether the argmax tokens agree, the KL divergence KL(p_full || p_served) of the next-token
 * distributions, and that every logit is finite. {@link #compare}: a candidate against the version
 * serving now (a gate that compared a version only with itself could not catch bad weights).
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

  /**
   * A candidate against the version serving now.
   *
   * @param pplCandidate perplexity of the candidate on the held-out text
   * @param pplServing perplexity of the serving version on the same text
   * @param meanKl mean KL(serving || candidate) over every compared position, nats
   * @param top1 fraction of positions whose argmax agrees
   * @param finite whether every logit of the candidate was finite
   * @param positions positions compared
   */
  record Comparison(
      double pplCandidate,
      double pplServing,
      double meanKl,
      double top1,
      boolean finite,
      int positions) {
    double pplRatio() {
      return pplCandidate / pplServing;
    }

    boolean passes(GateSettings s) {
      return finite
          && positions > 0
          && pplRatio() <= s.maxPplRatio()
          && meanKl <= s.maxKlVsServing();
    }

    String describe(GateSettings s) {
      if (!finite) {
        return "NaN or infinite logits";
      }
      return String.format(
          "against the serving version: held-out perplexity %.3f vs %.3f (ratio %.4f, max %.4f),"
              + " mean KL %.5f (max %.5f), top-1 agreement %.4f over %d positions",
          pplCandidate,
          pplServing,
          pplRatio(),
          s.maxPplRatio(),
          meanKl,
          s.maxKlVsServing(),
          top1,
          positions);
    }
  }

  /** Running sums of top-1 agreement and KL between two versions on the same positions. */
  static final class Drift {
    long positions;
    long agree;
    double kl;
    boolean finite = true;

    double top1() {
      return positions == 0 ? 1 : (double) agree / positions;
    }

    double meanKl() {
      return positions == 0 ? 0 : kl / positions;
    }

    /** Adds the comparison of {@code ref} and {@code cand} logits at {@code n} positions. */
    void add(float[] ref, float[] cand, int n, int vocab) {
      for (int i = 0; i < n; i++) {
        int off = i * vocab;
        for (int j = 0; j < vocab; j++) {
          if (!Float.isFinite(cand[off + j])) {
            finite = false;
            return;
          }
        }
        if (argmax(ref, off, vocab) == argmax(cand, off, vocab)) {
          agree++;
        }
        kl += kl(ref, cand, off, vocab);
        positions++;
      }
    }
  }

  private QualityGate() {}

  /**
   * Compares {@code candidate} with {@code serving}: perplexity of each on {@code heldOut} (each
   * position predicting the next token), and KL(serving || candidate) and top-1 agreement at every
   * position of {@code prompts} and {@code heldOut}.
   */
  static Comparison compare(
      LlamaConfig config,
      ModelWeights serving,
      ModelWeights candidate,
      List<int[]> prompts,
      List<int[]> heldOut,
      ComputePool pool) {
    int vocab = config.vocabSize();
    Drift drift = new Drift();
    double nllServing = 0;
    double nllCandidate = 0;
    long predicted = 0;
    for (int[] p : prompts) {
      int n = Math.min(p.length, config.contextLength());
      if (n > 0) {
        drift.add(
            logits(config, serving, p, n, pool), logits(config, candidate, p, n, pool), n, vocab);
      }
    }
    for (int[] t : heldOut) {
      int n = Math.min(t.length, config.contextLength());
      if (n < 2) {
        continue;
      }
      float[] a = logits(config, serving, t, n, pool);
      float[] b = logits(config, candidate, t, n, pool);
      drift.add(a, b, n, vocab);
      if (!drift.finite) {
        break;
      }
      for (int i = 0; i + 1 < n; i++) {
        nllServing += nll(a, i * vocab, vocab, t[i + 1]);
        nllCandidate += nll(b, i * vocab, vocab, t[i + 1]);
        predicted++;
      }
    }
    if (!drift.finite) {
      return new Comparison(Double.NaN, Double.NaN, Double.POSITIVE_INFINITY, 0, false, 0);
    }
    double pplS = predicted == 0 ? 1 : Math.exp(nllServing / predicted);
    double pplC = predicted == 0 ? 1 : Math.exp(nllCandidate / predicted);
    return new Comparison(pplC, pplS, drift.meanKl(), drift.top1(), true, (int) drift.positions);
  }

  /** Logits of every position of {@code tokens[0, n)} under {@code weights}. */
  static float[] logitsOf(LlamaConfig c, ModelWeights w, int[] tokens, int n, ComputePool pool) {
    return logits(c, w, tokens, n, pool);
  }

  /** -log softmax(x[off, off + n))[target], in double. */
  static double nll(float[] x, int off, int n, int target) {
    double m = Double.NEGATIVE_INFINITY;
    for (int i = 0; i < n; i++) {
      m = Math.max(m, x[off + i]);
    }
    double sum = 0;
    for (int i = 0; i < n; i++) {
      sum += Math.exp(x[off + i] - m);
    }
    return Math.log(sum) - (x[off + target] - m);
  }

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
