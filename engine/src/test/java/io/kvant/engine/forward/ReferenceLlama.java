package io.kvant.engine.forward;

import io.kvant.engine.model.LayerWeights;
import io.kvant.engine.model.LlamaConfig;
import io.kvant.engine.model.ModelWeights;
import io.kvant.engine.model.RopeStyle;
import io.kvant.engine.tensor.Tensor;

/**
 * An independent, deliberately naive float64 Llama forward pass: no KV cache (every position is
 * recomputed), no batching, weights read element by element through {@link Tensor#get}. It shares
 * no code with {@link Transformer}, so agreement between the two is evidence that both are right.
 */
final class ReferenceLlama {
  private final LlamaConfig c;
  private final ModelWeights w;

  ReferenceLlama(LlamaConfig c, ModelWeights w) {
    this.c = c;
    this.w = w;
  }

  /** Logits after the last token of {@code tokens} (positions 0..n-1). */
  double[] logits(int[] tokens) {
    int n = tokens.length;
    int dim = c.dim();
    int hs = c.headSize();
    double[][] x = new double[n][];
    for (int i = 0; i < n; i++) {
      x[i] = row(w.embedding(), tokens[i]);
    }
    for (LayerWeights l : w.layers()) {
      double[][] q = new double[n][];
      double[][] k = new double[n][];
      double[][] v = new double[n][];
      for (int i = 0; i < n; i++) {
        double[] h = rms(x[i], l.attnNorm());
        q[i] = add(mul(l.wq(), h), l.qBias());
        k[i] = add(mul(l.wk(), h), l.kBias());
        v[i] = add(mul(l.wv(), h), l.vBias());
        rope(q[i], c.heads(), i);
        rope(k[i], c.kvHeads(), i);
      }
      for (int i = 0; i < n; i++) {
        double[] att = new double[dim];
        for (int head = 0; head < c.heads(); head++) {
          int kvh = head / c.groupSize();
          double[] s = new double[i + 1];
          double max = Double.NEGATIVE_INFINITY;
          for (int t = 0; t <= i; t++) {
            double d = 0;
            for (int j = 0; j < hs; j++) {
              d += q[i][head * hs + j] * k[t][kvh * hs + j];
            }
            s[t] = d / Math.sqrt(hs);
            max = Math.max(max, s[t]);
          }
          double sum = 0;
          for (int t = 0; t <= i; t++) {
            s[t] = Math.exp(s[t] - max);
            sum += s[t];
          }
          for (int t = 0; t <= i; t++) {
            for (int j = 0; j < hs; j++) {
              att[head * hs + j] += s[t] / sum * v[t][kvh * hs + j];
            }
          }
        }
        double[] o = mul(l.wo(), att);
        for (int j = 0; j < dim; j++) {
          x[i][j] += o[j];
        }
        double[] h = rms(x[i], l.ffnNorm());
        double[] g = mul(l.wGate(), h);
        double[] u = mul(l.wUp(), h);
        for (int j = 0; j < g.length; j++) {
          g[j] = g[j] / (1 + Math.exp(-g[j])) * u[j];
        }
        double[] d = mul(l.wDown(), g);
        for (int j = 0; j < dim; j++) {
          x[i][j] += d[j];
        }
      }
    }
    return mul(w.output(), rms(x[n - 1], w.outputNorm()));
  }

  private void rope(double[] vec, int heads, int pos) {
    int hs = c.headSize();
    int half = hs / 2;
    for (int h = 0; h < heads; h++) {
      for (int i = 0; i < half; i++) {
        double angle = pos * Math.pow(c.ropeTheta(), -2.0 * i / hs);
        int a = h * hs + (c.ropeStyle() == RopeStyle.ADJACENT_PAIRS ? 2 * i : i);
        int b = h * hs + (c.ropeStyle() == RopeStyle.ADJACENT_PAIRS ? 2 * i + 1 : i + half);
        double va = vec[a];
        double vb = vec[b];
        vec[a] = va * Math.cos(angle) - vb * Math.sin(angle);
        vec[b] = va * Math.sin(angle) + vb * Math.cos(angle);
      }
    }
  }

  private double[] rms(double[] x, float[] weight) {
    double ss = 0;
    for (double v : x) {
      ss += v * v;
    }
    double inv = 1 / Math.sqrt(ss / x.length + c.normEps());
    double[] out = new double[x.length];
    for (int i = 0; i < x.length; i++) {
      out[i] = x[i] * inv * weight[i];
    }
    return out;
  }

  private static double[] row(Tensor t, int r) {
    double[] out = new double[t.cols()];
    for (int j = 0; j < out.length; j++) {
      out[j] = t.get(r, j);
    }
    return out;
  }

  private static double[] mul(Tensor t, double[] x) {
    double[] out = new double[t.rows()];
    for (int r = 0; r < out.length; r++) {
      double acc = 0;
      for (int j = 0; j < x.length; j++) {
        acc += t.get(r, j) * x[j];
      }
      out[r] = acc;
    }
    return out;
  }

  private static double[] add(double[] x, float[] bias) {
    if (bias != null) {
      for (int i = 0; i < x.length; i++) {
        x[i] += bias[i];
      }
    }
    return x;
  }
}
