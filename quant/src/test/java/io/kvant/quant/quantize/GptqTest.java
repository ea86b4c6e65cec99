package io.kvant.quant.quantize;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import io.kvant.quant.encoding.TensorEncoding;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** GPTQ on small random layers with correlated inputs, against round-to-nearest. */
class GptqTest {
  private static final int ROWS = 24;
  private static final int COLS = 96;
  private static final int N = 512;

  /** Inputs with correlated columns and uneven scales, like a transformer's normed activations. */
  private static float[] inputs(SplittableRandom rnd) {
    int k = 24;
    double[] mix = new double[k * COLS];
    for (int i = 0; i < mix.length; i++) {
      mix[i] = rnd.nextGaussian();
    }
    float[] x = new float[N * COLS];
    for (int t = 0; t < N; t++) {
      double[] z = new double[k];
      for (int i = 0; i < k; i++) {
        z[i] = rnd.nextGaussian();
      }
      for (int c = 0; c < COLS; c++) {
        double v = 0.3 * rnd.nextGaussian();
        for (int i = 0; i < k; i++) {
          v += z[i] * mix[i * COLS + c];
        }
        x[t * COLS + c] = (float) (v * (1 + c % 7));
      }
    }
    return x;
  }

  private static float[] weights(SplittableRandom rnd) {
    float[] w = new float[ROWS * COLS];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) (0.05 * rnd.nextGaussian());
    }
    return w;
  }

  private static double[] hessian(float[] x) {
    Gptq.Hessian h = new Gptq.Hessian(COLS);
    h.add(x, N);
    assertThat(h.count()).isEqualTo(N);
    return h.matrix();
  }

  /** {@code ||X W^T - X Q^T||^2}. */
  private static double outputError(float[] x, float[] w, float[] q) {
    double e = 0;
    for (int t = 0; t < N; t++) {
      for (int r = 0; r < ROWS; r++) {
        double d = 0;
        for (int c = 0; c < COLS; c++) {
          d += (double) x[t * COLS + c] * (w[r * COLS + c] - q[r * COLS + c]);
        }
        e += d * d;
      }
    }
    return e;
  }

  private static float[] rtn(float[] w, TensorEncoding enc) {
    return WeightQuantizer.dequantize(WeightQuantizer.apply(w, enc));
  }

  @Test
  void int8BeatsRoundToNearestWithTheSameScales() {
    SplittableRandom rnd = new SplittableRandom(1);
    float[] x = inputs(rnd);
    float[] w = weights(rnd);
    QuantSpec spec = QuantSpec.int8(Method.MINMAX);
    TensorEncoding enc = WeightQuantizer.chooseEncoding("t", w, ROWS, COLS, spec, null);
    Gptq.Solution g = Gptq.solve("t", w, ROWS, COLS, spec, hessian(x), false, enc);
    // Every value is on the grid: the encoding applied to it gives it back.
    assertThat(rtn(g.values(), enc)).containsExactly(g.values());
    double rtnErr = outputError(x, w, rtn(w, enc));
    double gptqErr = outputError(x, w, g.values());
    assertThat(gptqErr).isLessThan(0.5 * rtnErr);
  }

  @Test
  void int4GroupsBeatRoundToNearestWithAndWithoutActOrder() {
    SplittableRandom rnd = new SplittableRandom(2);
    float[] x = inputs(rnd);
    float[] w = weights(rnd);
    double[] h = hessian(x);
    float[] imp = new float[COLS];
    for (int c = 0; c < COLS; c++) {
      imp[c] = (float) h[c * COLS + c];
    }
    QuantSpec spec = QuantSpec.int4(32, true, Method.GPTQ);
    TensorEncoding mse =
        WeightQuantizer.chooseEncoding("t", w, ROWS, COLS, spec.withMethod(Method.MSE), imp);
    double rtnErr = outputError(x, w, rtn(w, mse));
    // Same scales as the importance-weighted MSE round-to-nearest.
    double fixed = outputError(x, w, Gptq.solve("t", w, ROWS, COLS, spec, h, false, mse).values());
    assertThat(fixed).isLessThan(0.5 * rtnErr);
    // Scales chosen by GPTQ itself, and the packed tensor decodes to GPTQ's values.
    for (boolean actOrder : new boolean[] {false, true}) {
      Gptq.Solution g = Gptq.solve("t", w, ROWS, COLS, spec, h, actOrder, null);
      assertThat(outputError(x, w, g.values()))
          .as("actOrder %s", actOrder)
          .isLessThan(0.5 * rtnErr);
      WeightQuantizer.Result res = Gptq.quantize("t", w, ROWS, COLS, spec, h, actOrder);
      assertThat(WeightQuantizer.dequantize(res.tensor())).containsExactly(g.values());
    }
  }

  @Test
  void aDiagonalHessianIsRoundToNearest() {
    SplittableRandom rnd = new SplittableRandom(3);
    float[] w = weights(rnd);
    double[] h = new double[COLS * COLS];
    for (int c = 0; c < COLS; c++) {
      h[c * COLS + c] = 1 + c;
    }
    QuantSpec spec = QuantSpec.int8(Method.MINMAX);
    TensorEncoding enc = WeightQuantizer.chooseEncoding("t", w, ROWS, COLS, spec, null);
    assertThat(Gptq.solve("t", w, ROWS, COLS, spec, h, false, enc).values())
        .containsExactly(rtn(w, enc));
  }

  @Test
  void upperCholeskyFactorOfTheInverse() {
    SplittableRandom rnd = new SplittableRandom(4);
    int n = 7;
    double[] b = new double[n * n];
    for (int i = 0; i < b.length; i++) {
      b[i] = rnd.nextGaussian();
    }
    double[] a = new double[n * n];
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < n; j++) {
        double s = i == j ? 0.5 : 0;
        for (int k = 0; k < n; k++) {
          s += b[i * n + k] * b[j * n + k];
        }
        a[i * n + j] = s;
      }
    }
    double[] u = Gptq.upperCholeskyOfInverse(a, n, "a");
    // U is upper triangular and U^T U A = I.
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < n; j++) {
        if (j < i) {
          assertThat(u[i * n + j]).isZero();
        }
        double s = 0;
        for (int k = 0; k < n; k++) {
          double inv = 0;
          for (int m = 0; m < n; m++) {
            inv += u[m * n + i] * u[m * n + k];
          }
          s += inv * a[k * n + j];
        }
        assertThat(s).isCloseTo(i == j ? 1 : 0, within(1e-9));
      }
    }
  }
}
