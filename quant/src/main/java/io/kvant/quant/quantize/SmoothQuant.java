package io.kvant.quant.quantize;

import io.kvant.engine.tensor.Tensor;
import io.kvant.quant.encoding.WeightFormat;
import java.util.List;

/**
 * SmoothQuant: the per-input-channel smoothing factors of the linears that share an input, for W8A8
 * products (per-token quantized activations times per-channel quantized weights).
 *
 * <p>Design note (after Xiao et al., "SmoothQuant", 2022): a few input channels carry activations
 * far larger than the rest, and per-token quantization gives a token one scale, set by its largest
 * channel, so the other channels get few levels. Dividing channel {@code c} of the input by {@code
 * s_c} and multiplying the weight columns by it leaves the product unchanged in exact arithmetic
 * and moves the range from the activations into the weights, whose per-output-channel scales absorb
 * it better. With {@code X_c = max |x_c|} over the calibration activations and {@code W_c = max
 * |w_{:,c}|} over the rows of every linear sharing the input, {@code s_c = X_c^a / W_c^(1-a)}
 * ({@code s_c = 1} where either is 0: nothing to balance). The division is folded into the
 * preceding RMSNorm weight or linear rows by the {@link Quantizer}, as for {@link Awq}.
 *
 * <p>{@code a} is searched over {@code 0, 0.05, ..., 1} together with no smoothing at all ({@code s
 * = 1}; note that {@code a = 0} is not that, it divides by the weights' range), minimising the W8A8
 * output error {@code sum_j ||X W_j^T - Qtok(X/s) Q(W_j s)^T||^2} over the sampled calibration
 * rows, with {@code Qtok} the GPU's per-token activation quantizer ({@link TokenQuantizer}) in the
 * code of {@code W_j}'s format and {@code Q} the role's quantizer with min-max ranges. Linears of a
 * format W8A8 does not read (a recipe file may mix them in) take the float activations. Because no
 * smoothing is a candidate, the chosen factors never do worse on the calibration rows.
 */
final class SmoothQuant {
  /** Steps of the alpha grid over [0, 1]. */
  static final int GRID = 20;

  private SmoothQuant() {}

  /**
   * The search's outcome.
   *
   * @param alpha the chosen migration strength, {@code NaN} when no smoothing won
   * @param scales the factors {@code s} to fold, {@code null} when no smoothing won
   * @param plainLoss the output error without smoothing
   * @param loss the output error of the choice ({@code <= plainLoss})
   */
  record Choice(double alpha, float[] scales, double plainLoss, double loss) {
    boolean smooths() {
      return scales != null;
    }
  }

  /** Whether SmoothQuant applies to weights of {@code f}: the formats W8A8 reads. */
  static boolean smooths(WeightFormat f) {
    return TokenQuantizer.quantizes(f);
  }

  /**
   * Searches the factors for {@code linears} (weights {@code [rows][cols]}, sharing the input) on
   * {@code samples} ({@code n} rows of {@code cols}), with {@code actMax} the per-channel max |x|
   * over all calibration rows.
   */
  static Choice search(List<Awq.Linear> linears, float[] actMax, float[] samples, int n, int cols) {
    float[][] reference = new float[linears.size()][];
    for (int j = 0; j < linears.size(); j++) {
      Awq.Linear l = linears.get(j);
      reference[j] = new float[n * l.rows()];
      WeightQuantizer.f32(l.w(), l.rows(), cols).matmul(samples, n, reference[j]);
    }
    float[] wMax = weightMax(linears, cols);
    double plain = loss(linears, reference, samples, n, cols, null);
    Choice best = new Choice(Double.NaN, null, plain, plain);
    for (int step = 0; step <= GRID; step++) {
      double a = (double) step / GRID;
      float[] s = scales(actMax, wMax, a);
      double loss = loss(linears, reference, samples, n, cols, s);
      if (loss < best.loss()) {
        best = new Choice(a, s, plain, loss);
      }
    }
    return best;
  }

  /** Per column, the max |w| over the rows of every linear. */
  static float[] weightMax(List<Awq.Linear> linears, int cols) {
    float[] m = new float[cols];
    for (Awq.Linear l : linears) {
      for (int r = 0; r < l.rows(); r++) {
        for (int c = 0; c < cols; c++) {
          m[c] = Math.max(m[c], Math.abs(l.w()[r * cols + c]));
        }
      }
    }
    return m;
  }

  /** {@code s_c = actMax_c^a / wMax_c^(1-a)}, 1 where either maximum is 0. */
  static float[] scales(float[] actMax, float[] wMax, double a) {
    float[] s = new float[actMax.length];
    for (int c = 0; c < s.length; c++) {
      s[c] =
          actMax[c] > 0 && wMax[c] > 0
              ? (float) (Math.pow(actMax[c], a) / Math.pow(wMax[c], 1 - a))
              : 1f;
    }
    return s;
  }

  /**
   * The W8A8 output error {@code sum_j ||reference_j - Qtok(X/s) Q(W_j s)^T||^2} of the factors
   * {@code s} ({@code null}: none).
   */
  static double loss(
      List<Awq.Linear> linears, float[][] reference, float[] samples, int n, int cols, float[] s) {
    float[] xs = samples.clone();
    if (s != null) {
      for (int i = 0; i < n; i++) {
        for (int c = 0; c < cols; c++) {
          xs[i * cols + c] /= s[c];
        }
      }
    }
    double loss = 0;
    for (int j = 0; j < linears.size(); j++) {
      Awq.Linear l = linears.get(j);
      WeightFormat f = l.spec().format();
      float[] x = xs;
      if (TokenQuantizer.quantizes(f)) {
        x = xs.clone();
        TokenQuantizer.fakeQuantize(x, n, cols, f);
      }
      float[] ws = s == null ? l.w() : Awq.scaleColumns(l.w(), l.rows(), cols, s);
      QuantSpec plain = l.spec().withMethod(Method.MINMAX);
      Tensor q = WeightQuantizer.quantize(l.name(), ws, l.rows(), cols, plain, null).tensor();
      float[] y = new float[n * l.rows()];
      q.matmul(x, n, y);
      for (int i = 0; i < y.length; i++) {
        double d = y[i] - reference[j][i];
        loss += d * d;
      }
    }
    return loss;
  }
}
