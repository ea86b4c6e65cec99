package io.kvant.quant.quantize;

import io.kvant.engine.tensor.Tensor;
import java.util.List;

/**
 * Activation-aware weight quantization: the per-input-channel scale search.
 *
 * <p>Design note (after Lin et al., "AWQ", 2023, and the llm-awq reference): weights that meet
 * large activations matter most, so they are scaled up before rounding (their relative rounding
 * error shrinks) and the input is scaled down by the same factor (folded into the preceding norm or
 * linear layer, so the float model is unchanged). With {@code m_c} the mean |x| of input channel
 * {@code c}, {@code s_c = m_c^a}, normalised so that {@code sqrt(max(s) min(s)) = 1}; {@code a} is
 * searched over {@code 0, 0.05, ..., 1} to minimise {@code sum_j ||X W_j^T - (X/s) Q(W_j s)^T||^2}
 * over the sampled calibration rows {@code X} and the linears {@code W_j} that share the input,
 * where {@code Q} is the role's quantizer with min-max ranges (clipping is searched afterwards).
 * {@code a = 0} is plain quantization, so the search never does worse on the calibration rows.
 */
final class Awq {
  static final int GRID = 20;

  private Awq() {}

  /** A linear layer sharing the input: weights {@code [rows][cols]} and how it is quantized. */
  record Linear(String name, float[] w, int rows, QuantSpec spec) {}

  /**
   * The best per-column scales for {@code linears} on {@code samples} ({@code n} rows of {@code
   * cols}), or {@code null} when no scaling beats plain quantization.
   */
  static float[] search(List<Linear> linears, float[] meanAbs, float[] samples, int n, int cols) {
    float[][] reference = new float[linears.size()][];
    for (int j = 0; j < linears.size(); j++) {
      Linear l = linears.get(j);
      reference[j] = new float[n * l.rows()];
      WeightQuantizer.f32(l.w(), l.rows(), cols).matmul(samples, n, reference[j]);
    }
    double best = Double.POSITIVE_INFINITY;
    float[] bestScales = null;
    for (int step = 0; step <= GRID; step++) {
      double a = (double) step / GRID;
      float[] s = scales(meanAbs, a);
      float[] xs = new float[n * cols];
      for (int i = 0; i < n; i++) {
        for (int c = 0; c < cols; c++) {
          xs[i * cols + c] = samples[i * cols + c] / s[c];
        }
      }
      double loss = 0;
      for (int j = 0; j < linears.size(); j++) {
        Linear l = linears.get(j);
        float[] ws = scaleColumns(l.w(), l.rows(), cols, s);
        QuantSpec plain = l.spec().withMethod(Method.MINMAX);
        Tensor q = WeightQuantizer.quantize(l.name(), ws, l.rows(), cols, plain, null).tensor();
        float[] y = new float[n * l.rows()];
        q.matmul(xs, n, y);
        for (int i = 0; i < y.length; i++) {
          double d = y[i] - reference[j][i];
          loss += d * d;
        }
      }
      if (loss < best) {
        best = loss;
        bestScales = step == 0 ? null : s;
      }
    }
    return bestScales;
  }

  static float[] scales(float[] meanAbs, double a) {
    int cols = meanAbs.length;
    float[] s = new float[cols];
    double max = 0;
    double min = Double.POSITIVE_INFINITY;
    for (int c = 0; c < cols; c++) {
      s[c] = (float) Math.pow(Math.max(meanAbs[c], 1e-4f), a);
      max = Math.max(max, s[c]);
      min = Math.min(min, s[c]);
    }
    float norm = (float) Math.sqrt(max * min);
    for (int c = 0; c < cols; c++) {
      s[c] /= norm;
    }
    return s;
  }

  static float[] scaleColumns(float[] w, int rows, int cols, float[] s) {
    float[] out = new float[w.length];
    for (int r = 0; r < rows; r++) {
      for (int c = 0; c < cols; c++) {
        out[r * cols + c] = w[r * cols + c] * s[c];
      }
    }
    return out;
  }
}
