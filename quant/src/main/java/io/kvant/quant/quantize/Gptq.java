package io.kvant.quant.quantize;

import io.kvant.quant.encoding.TensorEncoding;
import io.kvant.quant.encoding.TensorEncoding.Granularity;
import io.kvant.quant.encoding.WeightFormat;

/**
 * GPTQ: quantization of one linear layer with second-order error compensation.
 *
 * <p>Design note (after Frantar et al., "GPTQ: Accurate Post-Training Quantization for Generative
 * Pre-trained Transformers", 2022). For a layer {@code y = W x} with calibration inputs {@code X}
 * (rows are tokens), the output error of quantized weights {@code Q} is {@code ||X W^T - X
 * Q^T||^2}, a quadratic form in each row's error with Hessian {@code H = 2 X^T X} (the same for
 * every output row). Columns are quantized one at a time, left to right; after column {@code j} is
 * rounded, the error {@code (w_j - q_j) / U_jj} times row {@code j} of {@code U} is subtracted from
 * the columns not yet quantized, where {@code U} is the upper Cholesky factor of {@code H^-1}
 * ({@code H^-1 = U^T U}): this is the optimal (OBS) update of the remaining weights given the ones
 * already fixed. Updates inside a block of columns are applied at once; those to the columns after
 * the block are applied when the block is done (the "lazy batch" of the paper: the same arithmetic,
 * in a better order). Before inverting, {@code H} gets {@code 0.1 * mean(diag H)} added to its
 * diagonal (damping: calibration sets are small and {@code X^T X} can be singular; 0.1 rather than
 * the paper's 0.01 lowered the KL on the three real models in 7 of 9 cases, perf/RESULTS.md), and
 * input columns that were never active get weight 0.
 *
 * <p>Ranges. Per-channel scales (INT8, FP8) are chosen from the original row before any update.
 * Per-group scales (INT4) are chosen when the group is reached, from its columns as updated so far
 * (so they see the compensation already pushed into them). Both use the MSE clipping search of
 * {@link RangeSearch} with {@code diag H} as the column importance. With {@code actOrder}, columns
 * are visited in order of decreasing {@code diag H} (the most active inputs first, while there is
 * still freedom left to compensate them) and group scales are fixed up front from the original
 * weights, since a group's columns are then no longer reached together.
 *
 * <p>All Hessian arithmetic is in double precision; the code is scalar (layers here are small and
 * quantization runs once). The result's codes are the ones GPTQ chose, so the encoding applied to
 * the <em>source</em> weights by round-to-nearest does not reproduce them; applied to the
 * dequantized result it does.
 */
final class Gptq {
  /** Columns per lazy-update block (rounded up to a whole number of groups). */
  static final int BLOCK = 128;

  /** Damping as a fraction of the mean diagonal of {@code H}. */
  static final double DAMP = 0.1;

  private Gptq() {}

  /**
   * Accumulates {@code H = 2 / n * sum_t x_t x_t^T} over input rows {@code x_t} of one width. Not
   * thread-safe.
   */
  static final class Hessian {
    private final int cols;
    private final double[] h;
    private long n;

    Hessian(int cols) {
      this.cols = cols;
      this.h = new double[cols * cols];
    }

    int cols() {
      return cols;
    }

    /** Adds {@code rows} rows of {@code x} (row-major, width {@link #cols}). */
    void add(float[] x, int rows) {
      for (int r = 0; r < rows; r++) {
        int o = r * cols;
        for (int i = 0; i < cols; i++) {
          double xi = x[o + i];
          if (xi == 0) {
            continue;
          }
          int hi = i * cols;
          for (int j = i; j < cols; j++) {
            h[hi + j] += xi * x[o + j];
          }
        }
      }
      n += rows;
    }

    /** The rows added so far. */
    long count() {
      return n;
    }

    /** A fresh symmetric copy of {@code H = 2/n X^T X}, {@code [cols][cols]} row-major. */
    double[] matrix() {
      double[] m = new double[cols * cols];
      double f = n == 0 ? 0 : 2.0 / n;
      for (int i = 0; i < cols; i++) {
        for (int j = i; j < cols; j++) {
          double v = h[i * cols + j] * f;
          m[i * cols + j] = v;
          m[j * cols + i] = v;
        }
      }
      return m;
    }
  }

  /**
   * Quantizes {@code w[rows][cols]} (row-major, not modified) as {@code spec} says (INT8, INT4 or
   * FP8; the spec's method is ignored) minimising the output error on inputs with Hessian {@code h}
   * ({@code [cols][cols]}, e.g. {@link Hessian#matrix}; not modified).
   *
   * @param actOrder visit columns by decreasing {@code diag H} (see the class comment)
   * @return the tensor and its encoding
   * @throws IllegalArgumentException for a format without a code grid (FULL, Q4_0, Q8_0) or a
   *     Hessian of the wrong size
   */
  static WeightQuantizer.Result quantize(
      String name, float[] w, int rows, int cols, QuantSpec spec, double[] h, boolean actOrder) {
    Solution s = solve(name, w, rows, cols, spec, h, actOrder, null);
    return new WeightQuantizer.Result(
        WeightQuantizer.apply(s.values(), s.encoding()), s.encoding());
  }

  /** The dequantized weights GPTQ chose and the encoding whose codes they are. */
  record Solution(float[] values, TensorEncoding encoding) {}

  /**
   * The GPTQ solution; with {@code fixed} non-null, its scales and offsets are used as they are
   * (for comparisons with round-to-nearest on the same grid) instead of being chosen.
   */
  static Solution solve(
      String name,
      float[] w,
      int rows,
      int cols,
      QuantSpec spec,
      double[] h,
      boolean actOrder,
      TensorEncoding fixed) {
    if (h.length != (long) cols * cols) {
      throw new IllegalArgumentException(
          name + ": Hessian has " + h.length + " entries for " + cols + " columns");
    }
    Grid grid = Grid.of(spec);
    boolean grouped = spec.format() == WeightFormat.INT4;
    int group = grouped ? spec.groupSize() : cols;
    int perRow = grouped ? (cols + group - 1) / group : 1;
    boolean perTensor = spec.perTensor();
    Granularity gran =
        grouped
            ? Granularity.PER_BLOCK
            : perTensor ? Granularity.PER_TENSOR : Granularity.PER_CHANNEL;
    int units = perTensor ? 1 : rows * perRow;

    double[] hm = h.clone();
    float[] importance = new float[cols];
    double[] work = new double[rows * cols];
    for (int i = 0; i < w.length; i++) {
      work[i] = w[i];
    }
    double meanDiag = 0;
    for (int i = 0; i < cols; i++) {
      double d = hm[i * cols + i];
      importance[i] = (float) d;
      if (d <= 0) {
        // A dead input: any weight is as good as any other; 0 and a unit diagonal keep H
        // invertible.
        hm[i * cols + i] = 1;
        for (int r = 0; r < rows; r++) {
          work[r * cols + i] = 0;
        }
      }
      meanDiag += hm[i * cols + i];
    }
    meanDiag /= cols;
    for (int i = 0; i < cols; i++) {
      hm[i * cols + i] += DAMP * meanDiag;
    }

    // Column visiting order.
    int[] perm = new int[cols];
    for (int i = 0; i < cols; i++) {
      perm[i] = i;
    }
    if (actOrder) {
      perm =
          java.util.stream.IntStream.range(0, cols)
              .boxed()
              .sorted((a, b) -> Float.compare(importance[b], importance[a]))
              .mapToInt(Integer::intValue)
              .toArray();
    }

    // Scales: from the original weights unless groups are chosen as they are reached.
    float[] scale = new float[units];
    int[] offset = new int[units];
    boolean[] chosen = new boolean[units];
    QuantSpec range = spec.withMethod(Method.MSE);
    float[] sz = new float[2];
    if (fixed != null) {
      System.arraycopy(fixed.scale(), 0, scale, 0, units);
      System.arraycopy(fixed.offset(), 0, offset, 0, units);
      java.util.Arrays.fill(chosen, true);
    } else if (!grouped || actOrder) {
      float[] src = toFloat(work);
      if (perTensor) {
        RangeSearch.choose(grid, range, src, 0, rows * cols, 0, cols, importance, sz);
        setUnit(spec, scale, offset, 0, sz);
      } else {
        for (int r = 0; r < rows; r++) {
          for (int g = 0; g < perRow; g++) {
            int col0 = g * group;
            int len = Math.min(group, cols - col0);
            RangeSearch.choose(grid, range, src, r * cols + col0, len, col0, cols, importance, sz);
            setUnit(spec, scale, offset, r * perRow + g, sz);
          }
        }
      }
      java.util.Arrays.fill(chosen, true);
    }

    // Permute H and the weights' columns into visiting order; U = upper Cholesky factor of H^-1.
    double[] hp = new double[cols * cols];
    for (int i = 0; i < cols; i++) {
      for (int j = 0; j < cols; j++) {
        hp[i * cols + j] = hm[perm[i] * cols + perm[j]];
      }
    }
    double[] u = upperCholeskyOfInverse(hp, cols, name);
    double[] wp = new double[rows * cols];
    for (int r = 0; r < rows; r++) {
      for (int k = 0; k < cols; k++) {
        wp[r * cols + k] = work[r * cols + perm[k]];
      }
    }

    int block = grouped ? Math.max(1, (BLOCK + group - 1) / group) * group : BLOCK;
    double[] out = new double[rows * cols];
    double[] err = new double[rows * block];
    float[] groupVals = new float[grouped ? group : 0];
    for (int b0 = 0; b0 < cols; b0 += block) {
      int b1 = Math.min(cols, b0 + block);
      for (int k = b0; k < b1; k++) {
        int col = perm[k];
        if (grouped && !actOrder && col % group == 0 && !chosen[col / group]) {
          // Columns are in natural order here, so the group is col .. col+len of wp as well.
          int len = Math.min(group, cols - col);
          for (int r = 0; r < rows; r++) {
            for (int j = 0; j < len; j++) {
              groupVals[j] = (float) wp[r * cols + col + j];
            }
            RangeSearch.choose(grid, range, groupVals, 0, len, col, cols, importance, sz);
            setUnit(spec, scale, offset, r * perRow + col / group, sz);
          }
          for (int r = 0; r < rows; r++) {
            chosen[r * perRow + col / group] = true;
          }
        }
        double d = u[k * cols + k];
        for (int r = 0; r < rows; r++) {
          int unit = perTensor ? 0 : r * perRow + col / group;
          float s = scale[unit];
          int zero = zeroOf(spec.format(), offset[unit]);
          float x = (float) wp[r * cols + k];
          double q = grid.value(grid.code(x, s, zero), s, zero);
          out[r * cols + col] = q;
          double e = (wp[r * cols + k] - q) / d;
          err[r * block + (k - b0)] = e;
          for (int j = k + 1; j < b1; j++) {
            wp[r * cols + j] -= e * u[k * cols + j];
          }
        }
      }
      // Lazy update of the columns after the block.
      for (int r = 0; r < rows; r++) {
        for (int k = b0; k < b1; k++) {
          double e = err[r * block + (k - b0)];
          if (e == 0) {
            continue;
          }
          for (int j = b1; j < cols; j++) {
            wp[r * cols + j] -= e * u[k * cols + j];
          }
        }
      }
    }
    TensorEncoding enc =
        fixed != null
            ? fixed
            : new TensorEncoding(
                name,
                spec.format(),
                spec.symmetric(),
                gran,
                grouped ? group : 0,
                rows,
                cols,
                scale,
                offset);
    return new Solution(toFloat(out), enc);
  }

  private static void setUnit(QuantSpec spec, float[] scale, int[] offset, int u, float[] sz) {
    scale[u] = sz[0];
    offset[u] =
        switch (spec.format()) {
          case INT8 -> -128;
          case INT4 -> -(int) sz[1];
          default -> 0;
        };
  }

  /** The grid's zero point from an encoding offset (the inverse of {@link #setUnit}). */
  private static int zeroOf(WeightFormat f, int offset) {
    return f == WeightFormat.INT4 ? -offset : 0;
  }

  private static float[] toFloat(double[] d) {
    float[] f = new float[d.length];
    for (int i = 0; i < d.length; i++) {
      f[i] = (float) d[i];
    }
    return f;
  }

  /**
   * {@code U} upper triangular with {@code U^T U = A^-1} for symmetric positive definite {@code
   * A[n][n]}: {@code A = L L^T}, {@code A^-1 = L^-T L^-1}, then the lower Cholesky factor {@code M}
   * of {@code A^-1} gives {@code U = M^T}.
   */
  static double[] upperCholeskyOfInverse(double[] a, int n, String name) {
    double[] l = cholesky(a, n, name);
    // inv(L), lower triangular, by forward substitution column by column.
    double[] li = new double[n * n];
    for (int c = 0; c < n; c++) {
      li[c * n + c] = 1 / l[c * n + c];
      for (int i = c + 1; i < n; i++) {
        double s = 0;
        for (int k = c; k < i; k++) {
          s += l[i * n + k] * li[k * n + c];
        }
        li[i * n + c] = -s / l[i * n + i];
      }
    }
    // A^-1 = inv(L)^T inv(L).
    double[] inv = new double[n * n];
    for (int i = 0; i < n; i++) {
      for (int j = 0; j <= i; j++) {
        double s = 0;
        for (int k = i; k < n; k++) {
          s += li[k * n + i] * li[k * n + j];
        }
        inv[i * n + j] = s;
        inv[j * n + i] = s;
      }
    }
    double[] m = cholesky(inv, n, name);
    double[] u = new double[n * n];
    for (int i = 0; i < n; i++) {
      for (int j = i; j < n; j++) {
        u[i * n + j] = m[j * n + i];
      }
    }
    return u;
  }

  /** Lower Cholesky factor of symmetric positive definite {@code a[n][n]}. */
  static double[] cholesky(double[] a, int n, String name) {
    double[] l = new double[n * n];
    for (int i = 0; i < n; i++) {
      for (int j = 0; j <= i; j++) {
        double s = a[i * n + j];
        for (int k = 0; k < j; k++) {
          s -= l[i * n + k] * l[j * n + k];
        }
        if (i == j) {
          if (!(s > 0)) {
            throw new IllegalStateException(
                name + ": Hessian is not positive definite after damping (column " + i + ")");
          }
          l[i * n + i] = Math.sqrt(s);
        } else {
          l[i * n + j] = s / l[j * n + j];
        }
      }
    }
    return l;
  }
}
