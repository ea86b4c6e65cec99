package io.kvant.cuda.device;

/**
 * Scalar references for the kernels of {@code kvant.cu}, written from their contracts (in double
 * where the kernel sums, so the reference is the more exact side).
 */
final class KernelReferences {
  private KernelReferences() {}

  static float[] rmsNorm(float[] x, float[] w, int dim, float eps) {
    int rows = x.length / dim;
    float[] out = new float[x.length];
    for (int r = 0; r < rows; r++) {
      double ss = 0;
      for (int i = 0; i < dim; i++) {
        ss += (double) x[r * dim + i] * x[r * dim + i];
      }
      double inv = 1.0 / Math.sqrt(ss / dim + eps);
      for (int i = 0; i < dim; i++) {
        out[r * dim + i] = (float) (w[i] * (x[r * dim + i] * inv));
      }
    }
    return out;
  }

  static float[] rope(
      float[] x, int[] positions, double theta, int heads, int headSize, boolean adjacent) {
    float[] out = x.clone();
    int half = headSize / 2;
    for (int r = 0; r < positions.length; r++) {
      for (int h = 0; h < heads; h++) {
        int o = (r * heads + h) * headSize;
        for (int i = 0; i < half; i++) {
          double a = positions[r] * Math.pow(theta, -2.0 * i / headSize);
          double c = (float) Math.cos(a);
          double s = (float) Math.sin(a);
          int ia = adjacent ? o + 2 * i : o + i;
          int ib = adjacent ? o + 2 * i + 1 : o + i + half;
          out[ia] = (float) (x[ia] * c - x[ib] * s);
          out[ib] = (float) (x[ia] * s + x[ib] * c);
        }
      }
    }
    return out;
  }

  static float[] swiglu(float[] g, float[] u) {
    float[] out = new float[g.length];
    for (int i = 0; i < g.length; i++) {
      out[i] = (float) (g[i] / (1 + Math.exp(-g[i])) * u[i]);
    }
    return out;
  }

  /**
   * Attention of {@code q[row][heads][hs]} over {@code keys/values[seq][t][kvHeads][hs]} for
   * positions {@code [0, positions[row]]}.
   */
  static float[] attention(
      float[] q,
      float[][] keys,
      float[][] values,
      int[] rowSeq,
      int[] positions,
      int heads,
      int kvHeads,
      int hs) {
    int rows = positions.length;
    float[] out = new float[rows * heads * hs];
    int group = heads / kvHeads;
    double scale = 1.0 / Math.sqrt(hs);
    for (int r = 0; r < rows; r++) {
      float[] k = keys[rowSeq[r]];
      float[] v = values[rowSeq[r]];
      int len = positions[r] + 1;
      for (int h = 0; h < heads; h++) {
        int kvh = h / group;
        double[] s = new double[len];
        double max = Double.NEGATIVE_INFINITY;
        for (int t = 0; t < len; t++) {
          double dot = 0;
          for (int d = 0; d < hs; d++) {
            dot += (double) q[(r * heads + h) * hs + d] * k[(t * kvHeads + kvh) * hs + d];
          }
          s[t] = dot * scale;
          max = Math.max(max, s[t]);
        }
        double sum = 0;
        for (int t = 0; t < len; t++) {
          s[t] = Math.exp(s[t] - max);
          sum += s[t];
        }
        for (int d = 0; d < hs; d++) {
          double a = 0;
          for (int t = 0; t < len; t++) {
            a += s[t] * v[(t * kvHeads + kvh) * hs + d];
          }
          out[(r * heads + h) * hs + d] = (float) (a / sum);
        }
      }
    }
    return out;
  }

  /** {@code y[n][out] = x[n][in] W[out][in]^T} in double. */
  static float[] matmul(float[] w, int out, int in, float[] x, int n) {
    float[] y = new float[n * out];
    for (int r = 0; r < n; r++) {
      for (int o = 0; o < out; o++) {
        double a = 0;
        for (int i = 0; i < in; i++) {
          a += (double) w[o * in + i] * x[r * in + i];
        }
        y[r * out + o] = (float) a;
      }
    }
    return y;
  }

  static float bf16Round(float f) {
    int u = Float.floatToRawIntBits(f);
    u += 0x7fff + ((u >>> 16) & 1);
    return Float.intBitsToFloat(u & 0xffff0000);
  }

  static float f16Round(float f) {
    return Float.float16ToFloat(Float.floatToFloat16(f));
  }

  /** Largest |a - b| relative to the largest |b| (or absolute when b is all zeros). */
  static double maxRelError(float[] a, float[] b) {
    double max = 0;
    double scale = 0;
    for (int i = 0; i < a.length; i++) {
      max = Math.max(max, Math.abs((double) a[i] - b[i]));
      scale = Math.max(scale, Math.abs(b[i]));
    }
    return scale == 0 ? max : max / scale;
  }
}
