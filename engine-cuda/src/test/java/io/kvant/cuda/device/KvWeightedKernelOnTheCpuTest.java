package io.kvant.cuda.device;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.engine.forward.RopeTable;
import io.kvant.engine.kv.KeyRope;
import io.kvant.engine.kv.KvCacheType;
import io.kvant.engine.kv.KvEncoders;
import io.kvant.engine.kv.KvEncoding;
import io.kvant.engine.kv.KvGeometry;
import io.kvant.engine.kv.KvScales;
import io.kvant.engine.model.RopeStyle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The centered-qmse key append ({@code kv_weighted_parts}, then {@code kv_append} or {@code
 * rope_kv_append}) run on the CPU where g++ is installed (kvant.cu's RoPE-to-attention section
 * built as host C++ under {@code emu/}), against the CPU engine's encoder ({@link
 * KvEncoders.CenteredKeys}, {@code MseScale.quantizeWeighted}): the same key codes and scales to
 * the bit, on both KV types, both RoPE styles, head sizes whose rows split evenly into the search's
 * eight parts and ones that leave parts short (36) or empty (10), and both launch paths (the
 * harness requires rope + kv_append and rope_kv_append to agree). Random means of a few units and
 * second moments of random queries with strong channels, so the weighted choice differs from the
 * plain one on many keys (counted: the test fails if it never does). The hardware's side is {@code
 * CudaKernelsGpuTest}'s.
 */
class KvWeightedKernelOnTheCpuTest {
  @TempDir Path dir;

  @Test
  @Timeout(value = 300, unit = TimeUnit.SECONDS)
  void weightedKeysEqualTheCpuEncoder() throws Exception {
    String src = CudaKernels.source();
    assertThat(src).contains("#define KV_PARTS " + CudaKernels.WEIGHTED_PARTS + " ");
    Path harness =
        KernelOnTheCpu.build(
            dir,
            "kv_weighted_parts",
            KernelOnTheCpu.ropeToAttention(src),
            "kv_weighted_harness.cpp",
            "shim.h",
            "mq_shim.h",
            "attn_shim.h");
    SplittableRandom rnd = new SplittableRandom(44);
    int differ = 0;
    // kv type, head size, rope style
    int[][] cases = {
      {CudaKernels.DT_KV_E4M3, 64, 0},
      {CudaKernels.DT_KV_I8, 10, 1},
      {CudaKernels.DT_KV_E4M3, 36, 1},
      {CudaKernels.DT_KV_I8, 32, 0},
      {CudaKernels.DT_KV_E4M3, 8, 0}
    };
    for (int[] c : cases) {
      differ +=
          check(
              harness,
              c[0],
              c[1],
              c[2] == 0 ? RopeStyle.ADJACENT_PAIRS : RopeStyle.HALF_SPLIT,
              rnd);
    }
    assertThat(differ)
        .as("keys whose weighted scale differs from the plain least squares")
        .isPositive();
  }

  /** One case; returns how many keys got another scale than plain least squares would give. */
  private int check(Path harness, int kvType, int hs, RopeStyle style, SplittableRandom rnd)
      throws Exception {
    int heads = 4;
    int kvHeads = 2;
    int blockSize = 16;
    int layers = 2;
    int layer = 1;
    int[] positions = {0, 21, 47, 5};
    int[] rowSeq = {0, 1, 2, 3};
    int rows = positions.length;
    int maxBlocks = 3;
    int poolBlocks = rows * maxBlocks;
    int[] tables = new int[rows * maxBlocks];
    for (int i = 0; i < tables.length; i++) {
      tables[i] = (i * 5 + 3) % poolBlocks; // a permutation: 5 is prime to 12
    }
    int tablePositions = 48;
    RopeTable rope = new RopeTable(hs, tablePositions, 10000.0, style);
    float[] q = gaussian(rnd, rows * heads * hs, 1);
    float[] k = gaussian(rnd, rows * kvHeads * hs, 1);
    float[] v = gaussian(rnd, rows * kvHeads * hs, 1);
    int stats = layers * kvHeads * hs;
    float[] mean = gaussian(rnd, stats, 3);
    for (int i = 0; i < rows * kvHeads * hs; i++) {
      k[i] += mean[(layer * kvHeads + (i / hs) % kvHeads) * hs + i % hs]; // keys near their mean
    }
    float[] moment = new float[stats * hs];
    for (int m = 0; m < layers * kvHeads; m++) {
      for (int s = 0; s < 16; s++) {
        float[] qs = gaussian(rnd, hs, 1);
        qs[rnd.nextInt(hs)] *= 8;
        for (int i = 0; i < hs; i++) {
          for (int j = 0; j < hs; j++) {
            moment[(m * hs + i) * hs + j] += qs[i] * qs[j] / 16f;
          }
        }
      }
    }
    float[] momentT = new float[moment.length];
    for (int m = 0; m < moment.length; m += hs * hs) {
      for (int i = 0; i < hs; i++) {
        for (int j = 0; j < hs; j++) {
          momentT[m + j * hs + i] = moment[m + i * hs + j];
        }
      }
    }
    int chunk = (hs + CudaKernels.WEIGHTED_PARTS - 1) / CudaKernels.WEIGHTED_PARTS;
    int partThreads = Math.min(256, 32 * chunk);
    int appendThreads =
        Math.min(CudaKernels.centeredThreads(CudaKernels.KV_CENTERED, hs), 64 * kvHeads);
    int[] header = {
      kvType,
      heads,
      kvHeads,
      hs,
      blockSize,
      layers,
      layer,
      rows,
      maxBlocks,
      style == RopeStyle.ADJACENT_PAIRS ? 0 : 1,
      tablePositions,
      poolBlocks,
      partThreads,
      appendThreads
    };
    int half = tablePositions * hs / 2;
    ByteBuffer in =
        ByteBuffer.allocate(
                4
                    * (header.length
                        + 2 * rows
                        + tables.length
                        + 2 * half
                        + q.length
                        + 2 * k.length
                        + mean.length
                        + momentT.length))
            .order(ByteOrder.LITTLE_ENDIAN);
    for (int[] a : new int[][] {header, rowSeq, positions, tables}) {
      for (int x : a) {
        in.putInt(x);
      }
    }
    for (float[] a : new float[][] {rope.cosines(), rope.sines(), q, k, v, mean, momentT}) {
      for (float x : a) {
        in.putFloat(x);
      }
    }
    ByteBuffer out = KernelOnTheCpu.run(harness, dir, in.array());
    float[] kRot = new float[k.length];
    for (int i = 0; i < kRot.length; i++) {
      kRot[i] = out.getFloat();
    }
    long poolBytes = (long) poolBlocks * layers * 2 * kvHeads * blockSize * hs;
    byte[] pool = new byte[(int) poolBytes];
    out.get(pool);
    float[] scales = new float[(int) (poolBytes / hs)];
    for (int i = 0; i < scales.length; i++) {
      scales[i] = out.getFloat();
    }
    assertThat(out.remaining()).isZero();

    KvCacheType type = kvType == CudaKernels.DT_KV_I8 ? KvCacheType.INT8 : KvCacheType.FP8_E4M3;
    KvScales kvScales =
        new KvScales(
            new KvGeometry(layers, kvHeads, hs),
            false,
            new float[stats],
            new float[stats],
            new KeyRope(10000.0, style),
            mean,
            moment);
    KvEncoders.CenteredKeys weighted =
        new KvEncoders.CenteredKeys(kvScales, KvEncoding.CENTERED_QMSE);
    KvEncoders.CenteredKeys plain = new KvEncoders.CenteredKeys(kvScales, KvEncoding.CENTERED_MSE);
    int differ = 0;
    for (int r = 0; r < rows; r++) {
      int pos = positions[r];
      int block = tables[r * maxBlocks + pos / blockSize];
      for (int h = 0; h < kvHeads; h++) {
        byte[] want = new byte[hs];
        int off = (r * kvHeads + h) * hs;
        float scale = weighted.encode(type, layer, h, pos, kRot, off, want, 0);
        float plainScale = plain.encode(type, layer, h, pos, kRot, off, new byte[hs], 0);
        if (plainScale != scale) {
          differ++;
        }
        long o =
            ((((long) block * layers + layer) * 2) * kvHeads + h) * blockSize + pos % blockSize;
        String what = String.format("type %d head size %d row %d head %d", kvType, hs, r, h);
        assertThat(scales[(int) o]).as("scale, " + what).isEqualTo(scale);
        for (int d = 0; d < hs; d++) {
          assertThat(pool[(int) (o * hs + d)]).as("code %d, %s", d, what).isEqualTo(want[d]);
        }
      }
    }
    return differ;
  }

  private static float[] gaussian(SplittableRandom rnd, int n, double sd) {
    float[] a = new float[n];
    for (int i = 0; i < n; i++) {
      a[i] = (float) (sd * gauss(rnd));
    }
    return a;
  }

  private static double gauss(SplittableRandom rnd) {
    return Math.sqrt(-2 * Math.log(1 - rnd.nextDouble()))
        * Math.cos(2 * Math.PI * rnd.nextDouble());
  }
}
