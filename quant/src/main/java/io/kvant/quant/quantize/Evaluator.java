package io.kvant.quant.quantize;

import io.kvant.engine.forward.Batch;
import io.kvant.engine.forward.ForwardPass;
import io.kvant.engine.forward.Transformer;
import io.kvant.engine.kv.KvStore;
import io.kvant.engine.model.LlamaConfig;
import io.kvant.engine.model.ModelWeights;
import io.kvant.engine.tensor.ComputePool;
import java.util.List;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * Compares a candidate (quantized) model with a reference (full-precision) model of the same
 * configuration on token sequences, position by position (teacher forcing).
 *
 * <p>Metrics over every position that has a next token: top-1 agreement (the argmax tokens are
 * equal), mean KL divergence {@code KL(P_ref || P_cand)} in nats, and the perplexity of both on the
 * actual next tokens. Logits are turned into probabilities in double precision.
 *
 * <p>Near ties. On small models many positions have two almost equally likely next tokens, and a
 * quantization error far below anything that changes the distribution (mean KL ~ 1e-4) can still
 * swap their order. So each result also reports, with {@code gap = p1 - p2} the difference between
 * the reference model's largest and second-largest next-token probabilities at a position, and a
 * position a <em>near tie</em> when {@code gap < }{@link #TIE_GAP}: the fraction of positions that
 * are near ties, the fraction of disagreements that are at near ties, and top-1 agreement over the
 * positions that are not near ties. The raw top-1 agreement is unchanged by this.
 */
public final class Evaluator {
  /**
   * Reference top-1/top-2 probability gap below which a position counts as a near tie (see the
   * class comment).
   */
  public static final double TIE_GAP = 0.01;

  /**
   * The numbers of one comparison.
   *
   * @param positions positions compared (every position with a next token)
   * @param top1Agreement fraction of positions where both models' argmax tokens are equal
   * @param meanKl mean {@code KL(P_ref || P_cand)} in nats
   * @param pplReference perplexity of the reference on the actual next tokens
   * @param pplCandidate perplexity of the candidate on the actual next tokens
   * @param nearTies fraction of positions whose reference gap {@code p1 - p2 < TIE_GAP}
   * @param flipsNearTie fraction of the disagreeing positions that are near ties (0 when there are
   *     no disagreements)
   * @param top1AgreementExcludingTies top-1 agreement over the positions that are not near ties (1
   *     when every position is one)
   */
  public record Result(
      int positions,
      double top1Agreement,
      double meanKl,
      double pplReference,
      double pplCandidate,
      double nearTies,
      double flipsNearTie,
      double top1AgreementExcludingTies) {
    /** Positions where the argmax tokens differ. */
    public int disagreements() {
      return (int) Math.round(positions * (1 - top1Agreement));
    }
  }

  private final LlamaConfig config;
  private final Supplier<KvStore> kvFactory;
  private final Function<ModelWeights, ForwardPass> engines;

  /**
   * @param kvFactory makes a fresh KV store (one slot, at least the longest sequence) for each
   *     model run; this is where the KV storage type is chosen
   */
  public Evaluator(LlamaConfig config, ComputePool pool, Supplier<KvStore> kvFactory) {
    this(config, kvFactory, w -> new Transformer(config, w, pool));
  }

  /**
   * Runs the models on another engine (the CUDA backend's {@code load}); {@code kvFactory} must
   * then make stores that engine reads. Each engine made is closed after its comparison.
   */
  public Evaluator(
      LlamaConfig config,
      Supplier<KvStore> kvFactory,
      Function<ModelWeights, ForwardPass> engines) {
    this.config = config;
    this.kvFactory = kvFactory;
    this.engines = engines;
  }

  /** Runs both models on {@code sequences} and compares them. */
  public Result compare(ModelWeights reference, ModelWeights candidate, List<int[]> sequences) {
    return compare(reference, candidate, sequences, kvFactory);
  }

  /** As {@link #compare(ModelWeights, ModelWeights, List)} with the candidate's own KV stores. */
  public Result compare(
      ModelWeights reference,
      ModelWeights candidate,
      List<int[]> sequences,
      Supplier<KvStore> candidateKv) {
    try (ForwardPass ref = engines.apply(reference);
        ForwardPass cand = engines.apply(candidate)) {
      return compare(ref, cand, sequences, candidateKv);
    }
  }

  /**
   * Runs two engines of this configuration on {@code sequences} and compares them (for example the
   * same weights on the float and the integer kernels); the reference runs on this evaluator's KV
   * stores, the candidate on {@code candidateKv}'s. The engines stay open: the caller owns them.
   */
  public Result compare(
      ForwardPass ref, ForwardPass cand, List<int[]> sequences, Supplier<KvStore> candidateKv) {
    int vocab = config.vocabSize();
    long positions = 0;
    long agree = 0;
    long ties = 0;
    long tieFlips = 0;
    long agreeNonTie = 0;
    double kl = 0;
    double nllRef = 0;
    double nllCand = 0;
    for (int[] seq : sequences) {
      if (seq.length < 2) {
        continue;
      }
      int n = Math.min(seq.length, config.contextLength());
      float[] a = logits(ref, seq, n, kvFactory.get());
      float[] b = logits(cand, seq, n, candidateKv.get());
      double[] p = new double[vocab];
      double[] q = new double[vocab];
      for (int i = 0; i + 1 < n; i++) {
        softmax(a, i * vocab, vocab, p);
        softmax(b, i * vocab, vocab, q);
        boolean same = argmax(a, i * vocab, vocab) == argmax(b, i * vocab, vocab);
        boolean tie = topGap(p) < TIE_GAP;
        if (same) {
          agree++;
        }
        if (tie) {
          ties++;
          if (!same) {
            tieFlips++;
          }
        } else if (same) {
          agreeNonTie++;
        }
        double k = 0;
        for (int v = 0; v < vocab; v++) {
          if (p[v] > 0) {
            k += p[v] * (Math.log(p[v]) - Math.log(Math.max(q[v], 1e-300)));
          }
        }
        kl += k;
        int next = seq[i + 1];
        nllRef -= Math.log(Math.max(p[next], 1e-300));
        nllCand -= Math.log(Math.max(q[next], 1e-300));
        positions++;
      }
    }
    if (positions == 0) {
      throw new IllegalArgumentException("no sequence has two or more tokens");
    }
    return new Result(
        (int) positions,
        (double) agree / positions,
        kl / positions,
        Math.exp(nllRef / positions),
        Math.exp(nllCand / positions),
        (double) ties / positions,
        agree == positions ? 0 : (double) tieFlips / (positions - agree),
        ties == positions ? 1 : (double) agreeNonTie / (positions - ties));
  }

  /** {@code p1 - p2}: the largest probability minus the second largest. */
  static double topGap(double[] p) {
    double p1 = Double.NEGATIVE_INFINITY;
    double p2 = Double.NEGATIVE_INFINITY;
    for (double v : p) {
      if (v > p1) {
        p2 = p1;
        p1 = v;
      } else if (v > p2) {
        p2 = v;
      }
    }
    return p1 - p2;
  }

  /** The logits of every position; closes {@code kv} after when it holds more than heap. */
  private static float[] logits(ForwardPass t, int[] seq, int n, KvStore kv) {
    try {
      return logitsOf(t, seq, n, kv);
    } finally {
      if (kv instanceof AutoCloseable c) {
        try {
          c.close();
        } catch (Exception e) {
          throw new IllegalStateException("closing a KV store: " + e.getMessage(), e);
        }
      }
    }
  }

  private static float[] logitsOf(ForwardPass t, int[] seq, int n, KvStore kv) {
    int[] tokens = java.util.Arrays.copyOf(seq, n);
    int[] positions = new int[n];
    int[] seqs = new int[n];
    int[] rows = new int[n];
    for (int i = 0; i < n; i++) {
      positions[i] = i;
      rows[i] = i;
    }
    return t.forward(new Batch(tokens, positions, seqs, rows), kv);
  }

  private static void softmax(float[] x, int off, int n, double[] out) {
    double max = Double.NEGATIVE_INFINITY;
    for (int i = 0; i < n; i++) {
      max = Math.max(max, x[off + i]);
    }
    double sum = 0;
    for (int i = 0; i < n; i++) {
      out[i] = Math.exp(x[off + i] - max);
      sum += out[i];
    }
    for (int i = 0; i < n; i++) {
      out[i] /= sum;
    }
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
}
