package io.kvant.engine.kv;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * A scalar model of the GPU's {@code kv_weighted_scale} (engine-cuda's kvant.cu), in its order:
 * lane {@code k} owns candidate {@code k}; rows of {@code W d} in tiles of {@value #ROWS}, each row
 * summed over {@code j} in increasing order, then the tile's {@code d_i r_i} added to the lane's
 * error in increasing {@code i}; the winner by a butterfly of xor shuffles (least error, lowest
 * candidate on ties, a NaN error as +infinity). It must pick {@link MseScale#quantizeWeighted}'s
 * scale bit for bit, which the GPU tests check on a device; this checks the order argument where no
 * GPU is needed.
 */
class WeightedScaleGpuOrderTest {
  /** KV_W_ROWS of the kernel. */
  private static final int ROWS = 8;

  /**
   * The kernel's choice for {@code x[0..n)} with {@code W_ij = w[i * n + j]}; {@code errs}, if not
   * null, gets each candidate's error.
   */
  static float gpuModel(KvCacheType type, float[] x, int n, float[] w, float[] errs) {
    float amax = 0f;
    for (int i = 0; i < n; i++) {
      amax = Math.max(amax, Math.abs(x[i]));
    }
    if (amax == 0f) {
      return 0f;
    }
    float s0 = amax / KvKernels.codeMax(type);
    float[] dsh = new float[n * 32]; // [j][lane]
    float[] s = new float[32];
    float[] err = new float[32];
    for (int lane = 0; lane < 32; lane++) {
      s[lane] = s0 * MseScale.FACTORS[lane];
      for (int j = 0; j < n; j++) {
        dsh[j * 32 + lane] =
            x[j] - s[lane] * KvKernels.value(type, KvKernels.code(type, x[j], s[lane]));
      }
    }
    for (int lane = 0; lane < 32; lane++) {
      float e = 0f;
      for (int i0 = 0; i0 < n; i0 += ROWS) {
        float[] r = new float[ROWS];
        for (int j = 0; j < n; j++) {
          float dj = dsh[j * 32 + lane];
          for (int u = 0; u < ROWS; u++) {
            // rows past n read whatever the tile holds: their sums are never used
            float wij = i0 + u < n ? w[(i0 + u) * n + j] : Float.NaN;
            r[u] = r[u] + wij * dj;
          }
        }
        for (int u = 0; u < ROWS && i0 + u < n; u++) {
          e = e + dsh[(i0 + u) * 32 + lane] * r[u];
        }
      }
      err[lane] = e;
    }
    if (errs != null) {
      System.arraycopy(err, 0, errs, 0, 32);
    }
    float[] be = new float[32];
    int[] bk = new int[32];
    for (int lane = 0; lane < 32; lane++) {
      be[lane] = Float.isNaN(err[lane]) ? Float.POSITIVE_INFINITY : err[lane];
      bk[lane] = lane;
    }
    for (int o = 16; o > 0; o >>= 1) {
      float[] ne = be.clone();
      int[] nk = bk.clone();
      for (int lane = 0; lane < 32; lane++) {
        float oe = be[lane ^ o];
        int ok = bk[lane ^ o];
        if (oe < be[lane] || (oe == be[lane] && ok < bk[lane])) {
          ne[lane] = oe;
          nk[lane] = ok;
        }
      }
      be = ne;
      bk = nk;
    }
    for (int lane = 1; lane < 32; lane++) {
      assertThat(bk[lane]).isEqualTo(bk[0]); // every lane agrees
    }
    return s[bk[0]];
  }

  private static float[] random(SplittableRandom r, int n, double scale) {
    float[] x = new float[n];
    for (int i = 0; i < n; i++) {
      x[i] = (float) (r.nextGaussian() * scale);
    }
    return x;
  }

  /** A random second moment {@code A A^T / n} (positive semi-definite, as calibration's). */
  private static float[] moment(SplittableRandom r, int n) {
    float[] a = random(r, n * n, 1);
    float[] w = new float[n * n];
    for (int i = 0; i < n; i++) {
      for (int j = 0; j <= i; j++) {
        float acc = 0f;
        for (int k = 0; k < n; k++) {
          acc += a[i * n + k] * a[j * n + k];
        }
        w[i * n + j] = acc / n;
        w[j * n + i] = acc / n;
      }
    }
    return w;
  }

  /** Each candidate's error as {@link MseScale#quantizeWeighted} computes it (its loop, copied). */
  private static float[] cpuErrors(KvCacheType type, float[] x, int n, float[] w) {
    float amax = 0f;
    for (int i = 0; i < n; i++) {
      amax = Math.max(amax, Math.abs(x[i]));
    }
    float s0 = amax / KvKernels.codeMax(type);
    float[] errs = new float[32];
    float[] d = new float[n];
    for (int k = 0; k < 32; k++) {
      float s = s0 * MseScale.FACTORS[k];
      for (int i = 0; i < n; i++) {
        d[i] = x[i] - s * KvKernels.value(type, KvKernels.code(type, x[i], s));
      }
      float err = 0f;
      for (int i = 0; i < n; i++) {
        float r = 0f;
        for (int j = 0; j < n; j++) {
          r += w[i * n + j] * d[j];
        }
        err += d[i] * r;
      }
      errs[k] = err;
    }
    return errs;
  }

  private static void check(KvCacheType type, float[] x, int n, float[] w) {
    float[] gpuErrs = new float[32];
    float gpu = gpuModel(type, x, n, w, gpuErrs);
    boolean zero = true;
    for (float v : x) {
      zero &= v == 0f;
    }
    if (!zero) { // every candidate's error, not only the winner, bit for bit
      float[] cpuErrs = cpuErrors(type, x, n, w);
      for (int k = 0; k < 32; k++) {
        assertThat(Float.floatToIntBits(gpuErrs[k]))
            .as("n %d %s candidate %d", n, type, k)
            .isEqualTo(Float.floatToIntBits(cpuErrs[k]));
      }
    }
    float cpu =
        MseScale.quantizeWeighted(type, x, 0, n, MemorySegment.ofArray(new byte[n]), 0, w, 0);
    assertThat(Float.floatToRawIntBits(gpu))
        .as("n %d %s", n, type)
        .isEqualTo(Float.floatToRawIntBits(cpu));
  }

  @Test
  void theKernelsOrderPicksTheCpusScaleBitForBit() {
    SplittableRandom r = new SplittableRandom(13);
    for (KvCacheType type : new KvCacheType[] {KvCacheType.INT8, KvCacheType.FP8_E4M3}) {
      for (int n : new int[] {8, 6, 12, 64, 128, 256}) {
        int trials = n >= 128 ? 4 : 30;
        for (int t = 0; t < trials; t++) {
          float[] w = moment(r, n);
          check(type, random(r, n, 0.01 + 5 * r.nextDouble()), n, w);
          // outliers: a few large channels, as keys have
          float[] x = random(r, n, 1);
          x[r.nextInt(n)] *= 40;
          check(type, x, n, w);
        }
      }
    }
  }

  @Test
  void tiesAndNonFiniteErrorsPickAsTheCpuDoes() {
    SplittableRandom r = new SplittableRandom(5);
    for (KvCacheType type : new KvCacheType[] {KvCacheType.INT8, KvCacheType.FP8_E4M3}) {
      for (int n : new int[] {8, 64}) {
        float[] x = random(r, n, 2);
        check(type, x, n, new float[n * n]); // every error 0: the first candidate
        float[] nan = moment(r, n);
        nan[3] = Float.NaN;
        check(type, x, n, nan); // every error NaN: s0
        float[] inf = moment(r, n);
        inf[n + 1] = Float.POSITIVE_INFINITY;
        check(type, x, n, inf);
        float[] big = moment(r, n);
        for (int i = 0; i < n * n; i++) {
          big[i] *= 1e37f; // errors overflow to +infinity for some candidates
        }
        check(type, x, n, big);
        check(type, new float[n], n, moment(r, n)); // all zero: scale 0
      }
    }
  }
}
