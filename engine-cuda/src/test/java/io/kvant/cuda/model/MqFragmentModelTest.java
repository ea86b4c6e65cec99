package io.kvant.cuda.model;

import static java.lang.foreign.ValueLayout.JAVA_INT_UNALIGNED;
import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.cuda.device.CudaKernels;
import io.kvant.engine.tensor.DType;
import io.kvant.engine.tensor.Fp8Codes;
import io.kvant.engine.tensor.Tensor;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A model, on the CPU, of how {@code mq4} / {@code mq8} (kvant.cu) read the tiled layouts: each
 * lane's 16-byte load split into the A-fragment registers exactly as the kernels' decode steps
 * split them ({@code mq_dequant}, {@code mq8_dequant}), the activations into B fragments as the
 * kernels load them, and {@code mma.m16n8k16}'s fragment ownership as the PTX ISA defines it (A:
 * register i of lane (g, t) holds row g + 8 (i & 1), columns 2t, 2t + 1 (+ 8 for i >= 2); B:
 * register j holds k 2t, 2t + 1 (+ 8 for j = 1) of column g; C: rows g, g + 8, columns 2t, 2t + 1).
 * The product of the modelled warp must equal {@code x W^T} from the layout's values.
 *
 * <p>Why: no GPU is needed to catch a word of the layout handed to the wrong fragment register. The
 * 4-bit case is the control (mq4 is verified on an H200 against a float64 reference), so a wrong
 * model of the fragments would fail there too; the 8-bit case checks mq8's register split.
 */
class MqFragmentModelTest {
  @ParameterizedTest
  @ValueSource(strings = {"I4:g128", "I4:g32:asym", "Q4_0", "I8", "F8_E4M3", "Q8_0"})
  void theKernelsFragmentsMultiplyTheLayoutsValues(String spec) {
    QuantFixtures.Kind kind = QuantFixtures.Kind.parse(spec);
    SplittableRandom rnd = new SplittableRandom(spec.hashCode());
    int out = 21;
    int in = 256;
    int n = 8;
    float[] w = new float[out * in];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) rnd.nextGaussian() * 0.2f;
    }
    Tensor t = QuantFixtures.quantize(w, out, in, kind);
    QuantizedLayout q = QuantizedLayout.of(t);
    assertThat(q.tiled()).isTrue();
    double[] x = new double[n * in];
    for (int i = 0; i < x.length; i++) {
      x[i] = rnd.nextGaussian();
    }
    double[][] got = new double[out][n];
    for (int rt = 0; rt < (out + 15) / 16; rt++) {
      warpTile(q, rt, x, n, got);
    }
    for (int o = 0; o < out; o++) {
      for (int r = 0; r < n; r++) {
        double want = 0;
        for (int c = 0; c < in; c++) {
          want += q.value(o, c) * x[r * in + c];
        }
        assertThat(got[o][r])
            .as("%s row %d, activation row %d", spec, o, r)
            .isCloseTo(want, tol(want));
      }
    }
  }

  /**
   * The layout's values are float products (scale times code, rounded), the model's are exact: they
   * differ by rounding (~1e-7 relative per term); a misplaced code changes a sum by ~0.1.
   */
  private static org.assertj.core.data.Offset<Double> tol(double v) {
    return org.assertj.core.data.Offset.offset(1e-4 * Math.max(1, Math.abs(v)));
  }

  /** One block's 16-row tile rt: every chunk's lanes, fragments and mmas, scaled per k-tile. */
  private static void warpTile(QuantizedLayout q, int rt, double[] x, int n, double[][] y) {
    int in = q.cols();
    boolean four = q.bits() == 4;
    int kt = four ? 4 : 2; // k-tiles per 512-byte chunk
    int chunks = in / (16 * kt);
    for (int kc = 0; kc < chunks; kc++) {
      for (int j = 0; j < kt; j++) {
        double[][] a = new double[16][16]; // [row in tile][logical k]
        for (int lane = 0; lane < 32; lane++) {
          int g = lane >> 2;
          int tt = lane & 3;
          long at = ((long) rt * chunks + kc) * 512 + lane * 16L;
          int[] words = new int[4];
          for (int i = 0; i < 4; i++) {
            words[i] = q.codes().get(JAVA_INT_UNALIGNED, at + 4L * i);
          }
          // the four registers of this k-tile, each a pair (low half, high half) of values
          double[][] reg =
              four ? nibbleRegs(q, words[j]) : byteRegs(q, words[2 * j], words[2 * j + 1]);
          for (int i = 0; i < 4; i++) {
            int row = g + 8 * (i & 1);
            int k = 2 * tt + 8 * (i >> 1);
            a[row][k] += reg[i][0];
            a[row][k + 1] += reg[i][1];
          }
          // zero points are per (row, group): the nibble registers hold code - zero below
          if (four) {
            for (int i = 0; i < 4; i++) {
              int row = rt * 16 + g + 8 * (i & 1);
              if (row < q.rows()) {
                int col = kc * 64 + 16 * j;
                int zero = zero(q, row, col);
                a[g + 8 * (i & 1)][2 * tt + 8 * (i >> 1)] -= zero;
                a[g + 8 * (i & 1)][2 * tt + 8 * (i >> 1) + 1] -= zero;
              }
            }
          }
        }
        // B: logical k of lane t's pairs -> actual columns 4t + {0, 1} (k 2t, 2t + 1) and
        // 4t + {2, 3} (k 2t + 8, 2t + 9) of this k-tile, as the float4 loads give them
        int base = kc * 16 * kt + 16 * j;
        for (int row = 0; row < 16; row++) {
          int o = rt * 16 + row;
          if (o >= q.rows()) {
            continue;
          }
          double s =
              q.scales()[o * q.groupsPerRow() + (q.groupsPerRow() == 1 ? 0 : base / q.groupSize())];
          for (int r = 0; r < n; r++) {
            double sum = 0;
            for (int k = 0; k < 16; k++) {
              int tq = (k & 7) >> 1;
              int col = base + 4 * tq + 2 * (k >> 3) + (k & 1);
              sum += a[row][k] * x[r * in + col];
            }
            y[o][r] += s * sum;
          }
        }
      }
    }
  }

  private static int zero(QuantizedLayout q, int row, int col) {
    return q.zeros() == null ? 8 : q.zeros()[row * q.groupsPerRow() + col / q.groupSize()];
  }

  /**
   * mq_dequant's registers of word q (before the zero point): a[0] nibbles 0 and 4, a[1] nibbles 1
   * and 5, a[2] nibbles 2 and 6, a[3] nibbles 3 and 7 (low half first).
   */
  private static double[][] nibbleRegs(QuantizedLayout q, int word) {
    double[][] r = new double[4][2];
    for (int i = 0; i < 4; i++) {
      r[i][0] = (word >>> (4 * i)) & 0xF;
      r[i][1] = (word >>> (4 * i + 16)) & 0xF;
    }
    return r;
  }

  /**
   * mq8_dequant's registers of the words wa (row g) and wb (row g + 8): a[0] bytes 0-1 of wa, a[1]
   * bytes 0-1 of wb, a[2] bytes 2-3 of wa, a[3] bytes 2-3 of wb.
   */
  private static double[][] byteRegs(QuantizedLayout q, int wa, int wb) {
    int[] words = {wa, wb, wa >>> 16, wb >>> 16};
    double[][] r = new double[4][2];
    for (int i = 0; i < 4; i++) {
      r[i][0] = decode8(q, words[i] & 0xFF);
      r[i][1] = decode8(q, (words[i] >>> 8) & 0xFF);
    }
    return r;
  }

  private static double decode8(QuantizedLayout q, int code) {
    return q.format() == CudaKernels.QF_INT8 ? (byte) code : Fp8Codes.decode(DType.F8_E4M3, code);
  }
}
