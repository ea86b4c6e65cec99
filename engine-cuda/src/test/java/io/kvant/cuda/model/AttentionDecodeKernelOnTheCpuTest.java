package io.kvant.cuda.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.data.Offset.offset;

import io.kvant.cuda.device.CudaKernels;
import io.kvant.cuda.device.KernelOnTheCpu;
import io.kvant.cuda.device.KeyCentering;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code attention_decode} (RoPE, the KV append, the tiled attention and its merge of a decode step
 * in one launch) run on the CPU where g++ is installed, against the three kernels it stands for
 * ({@code rope_kv_append}, {@code attention_tiled}, {@code attention_merge}) run on the same inputs
 * in the same harness: kvant.cu's RoPE-to-attention section cut out and built as host C++ under
 * {@code emu/shim.h}, {@code mq_shim.h} and {@code attn_shim.h}. Its contract is the same results
 * to the bit (outputs, pool codes and scales), on every KV type it takes, both head-size paths of
 * the tile staging, both RoPE styles, and one split or several (3, and 40 of two positions each;
 * its last block merges; the harness runs it a second time with the blocks in reverse order, so
 * another block merges, and requires the same bits again), and token scales searched by least
 * squares and keys per channel (KIVI) with splits of whole KV blocks, as the caller plans them for
 * such keys. With an F32 pool the three kernels' outputs are also checked against float64
 * attention, so the comparison is not between two wrong answers. The hardware's side (the read-only
 * cache, the arrival counters under real concurrency) is {@code CudaKernelsGpuTest}'s.
 */
class AttentionDecodeKernelOnTheCpuTest {
  private static final int FA_VECS = 16;

  @TempDir Path dir;

  @Test
  // ~97 s of emulation on an idle 2-vCPU machine, against the build's 120 s default: it timed out
  // once with another build's compile beside it (session 35), so it gets room of its own
  @Timeout(value = 300, unit = TimeUnit.SECONDS)
  void oneLaunchEqualsTheThreeKernelsItReplaces() throws Exception {
    Path harness = build();
    SplittableRandom rnd = new SplittableRandom(24);
    int mse = CudaKernels.KV_TOKEN_MSE;
    int kivi = CudaKernels.KV_KEY_CHANNELS;
    int centered = mse | CudaKernels.KV_CENTERED;
    // kv type, head size (36: F16/BF16 rows not a multiple of 16 bytes), rope style, encoding bits
    // (the last three: centered-mse and centered-qmse keys, whose search runs as its own launch)
    int[][] cases = {
      {CudaKernels.DT_F32, 64, 0, 0},
      {CudaKernels.DT_F16, 36, 1, 0},
      {CudaKernels.DT_BF16, 64, 1, 0},
      {CudaKernels.DT_KV_I8, 64, 0, 0},
      {CudaKernels.DT_KV_E4M3, 48, 1, 0},
      {CudaKernels.DT_F16, 64, 0, 0},
      {CudaKernels.DT_KV_E4M3, 64, 1, mse},
      {CudaKernels.DT_KV_I8, 64, 0, kivi},
      {CudaKernels.DT_KV_I8, 48, 1, kivi | mse},
      {CudaKernels.DT_KV_E4M3, 64, 0, kivi},
      {CudaKernels.DT_KV_E4M3, 64, 1, centered},
      {CudaKernels.DT_KV_I8, 48, 0, centered | CudaKernels.KV_WEIGHTED},
      {CudaKernels.DT_KV_E4M3, 64, 0, centered | CudaKernels.KV_WEIGHTED}
    };
    for (int i = 0; i < cases.length; i++) {
      int[] c = cases[i];
      // Keys per channel take splits of whole KV blocks (16 positions): 32 and 16 positions each.
      // 40 splits (about a thread per split each) on two of the other types only: each block is
      // 128 host threads, and a 40-split case costs the emulator a dozen 3-split ones.
      int[] splitsList =
          (c[3] & kivi) != 0
              ? new int[] {1, 3, 5}
              : i % 6 == 0 && (c[3] & CudaKernels.KV_CENTERED) == 0
                  ? new int[] {1, 3, 40}
                  : new int[] {1, 3};
      // 8 query heads over 2 kv heads: a warp per vector (fa_attend's one-row form); 12: six
      // vectors, four per warp (its FA_ROWS form). F32 (checked against float64 too) takes both.
      int[] headsList =
          c[0] == CudaKernels.DT_F32 ? new int[] {8, 12} : new int[] {i % 2 == 0 ? 8 : 12};
      for (int heads : headsList) {
        for (int splits : splitsList) {
          if (splits == 40 && heads == 8 && c[0] == CudaKernels.DT_F32) {
            continue; // F32's 40 splits at 12 heads: 240 (vector, split) pairs over 128 threads
          }
          check(harness, c[0], c[1], c[2], c[3], splits, heads, 0, 0, rnd);
        }
      }
    }
  }

  /**
   * {@code attention_rows} (a warp per range of positions) against the three kernels under its own
   * split, to the bit (outputs, pool codes, token and channel scales), on every KV type and head
   * size it is compiled for, keys per channel among them, both RoPE styles, and each of its forms:
   * one range (attention_tiled's unsplit output), the block's warps merged in shared memory, blocks
   * merged by the last to arrive (also in reverse block order, in the harness), a warp walking
   * several tiles, and a row whose positions end before the last block; and, for every KV type but
   * keys per channel, with a block per query head too (the same bits).
   */
  @Test
  void warpPerRangeEqualsTheThreeKernelsUnderItsSplit() throws Exception {
    Path harness = build();
    SplittableRandom rnd = new SplittableRandom(25);
    int mse = CudaKernels.KV_TOKEN_MSE;
    int kivi = CudaKernels.KV_KEY_CHANNELS;
    int[][] cases = {
      {CudaKernels.DT_F16, 128, 0, 0},
      {CudaKernels.DT_BF16, 64, 1, 0},
      {CudaKernels.DT_KV_I8, 128, 1, mse},
      {CudaKernels.DT_KV_E4M3, 32, 0, 0},
      {CudaKernels.DT_KV_I8, 64, 0, 0},
      {CudaKernels.DT_F16, 32, 1, 0},
      {CudaKernels.DT_BF16, 128, 0, 0},
      {CudaKernels.DT_KV_E4M3, 128, 1, mse},
      {CudaKernels.DT_KV_I8, 64, 1, kivi},
      {CudaKernels.DT_KV_E4M3, 32, 0, kivi | mse}
    };
    // (warps per block, tiles per warp) over positions 0, 37 and 79 (three tiles at most)
    int[][] plans = {{3, 1}, {1, 1}, {2, 1}, {1, 3}, {2, 2}, {1, 2}};
    for (int i = 0; i < cases.length; i++) {
      int[] c = cases[i];
      // the second plan (with 6 heads) on every other case: each run is a few seconds of threads
      for (int j = 0; j < 2 - i % 2; j++) {
        int[] plan = plans[(i + j * 2) % plans.length];
        // 8 query heads over 2 kv heads: four per kv head; 6: three, a vector of four unused
        check(harness, c[0], c[1], c[2], c[3], 1, j == 1 ? 6 : 8, plan[0], plan[1], rnd);
      }
    }
  }

  @Test
  void takesEveryEncodingWithKeyChannelsOnlyOverWholeBlocks() {
    CudaKernels.AttentionSplit one = new CudaKernels.AttentionSplit(1, 4096);
    CudaKernels.AttentionSplit whole = new CudaKernels.AttentionSplit(8, 64);
    CudaKernels.AttentionSplit partBlocks = new CudaKernels.AttentionSplit(8, 24);
    int kivi = CudaKernels.KV_KEY_CHANNELS;
    int mse = CudaKernels.KV_TOKEN_MSE;
    KeyCentering none = KeyCentering.NONE;
    assertThat(CudaKernels.attentionDecodeTakes(0, none, partBlocks, 16)).isTrue();
    assertThat(CudaKernels.attentionDecodeTakes(mse, none, partBlocks, 16)).isTrue();
    assertThat(CudaKernels.attentionDecodeTakes(kivi, none, one, 16)).isTrue();
    assertThat(CudaKernels.attentionDecodeTakes(kivi | mse, none, whole, 16)).isTrue();
    assertThat(CudaKernels.attentionDecodeTakes(kivi, none, partBlocks, 16)).isFalse();
    assertThat(CudaKernels.attentionDecodeTakes(kivi, none, whole, 128)).isFalse();
    // centered keys since session 44 (the harness runs them): only keys per channel are bounded
    KeyCentering means = new KeyCentering(64, 0, 128, 256, 0);
    assertThat(CudaKernels.attentionDecodeTakes(CudaKernels.KV_CENTERED | mse, means, one, 16))
        .isTrue();
  }

  private void check(
      Path harness,
      int kvType,
      int headSize,
      int style,
      int kvEnc,
      int splits,
      int heads,
      int rowsWarps,
      int rowsPer,
      SplittableRandom rnd)
      throws Exception {
    int kvHeads = 2;
    int blockSize = 16;
    int layers = 2;
    int layer = 1;
    // first token (slot 0 of split 0), mid-block in split 1, the last slot of a block in split 2
    int[] positions = {0, 37, 79};
    int rows = positions.length;
    int maxLen = 80;
    int splitLen =
        (kvEnc & CudaKernels.KV_KEY_CHANNELS) != 0 && splits > 1
            ? 16 * ((maxLen / 16 + splits - 1) / splits)
            : (maxLen + splits - 1) / splits;
    int maxBlocks = (maxLen + blockSize - 1) / blockSize;
    int poolBlocks = rows * maxBlocks;
    List<Integer> order = new ArrayList<>();
    for (int b = 0; b < poolBlocks; b++) {
      order.add(b);
    }
    Collections.shuffle(order, new java.util.Random(rnd.nextLong()));
    int[] tables = new int[rows * maxBlocks];
    for (int i = 0; i < tables.length; i++) {
      tables[i] = order.get(i);
    }
    int[] rowSeq = {2, 0, 1};
    int half = headSize / 2;
    int tablePositions = maxLen;
    float[] cos = new float[tablePositions * half];
    float[] sin = new float[tablePositions * half];
    for (int t = 0; t < tablePositions; t++) {
      for (int i = 0; i < half; i++) {
        double a = t * Math.pow(10000, -2.0 * i / headSize);
        cos[t * half + i] = (float) Math.cos(a);
        sin[t * half + i] = (float) Math.sin(a);
      }
    }
    float[] q = gaussian(rnd, rows * heads * headSize);
    float[] k = gaussian(rnd, rows * kvHeads * headSize);
    float[] v = gaussian(rnd, rows * kvHeads * headSize);
    long elems = (long) poolBlocks * layers * 2 * kvHeads * blockSize * headSize;
    int es = kvType == CudaKernels.DT_F32 ? 4 : kvType <= CudaKernels.DT_BF16 ? 2 : 1;
    boolean scaled = kvType == CudaKernels.DT_KV_I8 || kvType == CudaKernels.DT_KV_E4M3;
    ByteBuffer pool = ByteBuffer.allocate((int) (elems * es)).order(ByteOrder.LITTLE_ENDIAN);
    for (long i = 0; i < elems; i++) {
      float x = (float) rnd.nextGaussian();
      switch (kvType) {
        case CudaKernels.DT_F32 -> pool.putFloat(x);
        case CudaKernels.DT_F16 -> pool.putShort(Float.floatToFloat16(x));
        case CudaKernels.DT_BF16 -> pool.putShort((short) (Float.floatToRawIntBits(x) >>> 16));
        case CudaKernels.DT_KV_I8 -> pool.put((byte) (rnd.nextInt(255) - 127));
        default -> {
          int b = rnd.nextInt(256);
          pool.put((byte) ((b & 0x7f) == 0x7f ? 0x7e : b)); // no NaN codes
        }
      }
    }
    float[] scales = new float[scaled ? (int) (elems / headSize) : 0];
    for (int i = 0; i < scales.length; i++) {
      scales[i] = (float) (0.002 + 0.01 * rnd.nextDouble());
    }
    boolean channels = (kvEnc & CudaKernels.KV_KEY_CHANNELS) != 0;
    float[] chans = new float[channels ? poolBlocks * layers * kvHeads * headSize : 0];
    for (int i = 0; i < chans.length; i++) {
      chans[i] = (float) (0.002 + 0.01 * rnd.nextDouble());
    }
    float scale = (float) (1.0 / Math.sqrt(headSize));
    // centered keys: means of a few units, and for the weighted search second moments of random
    // queries with a strong channel each, stored transposed (symmetric: the same matrix)
    boolean centeredKeys = (kvEnc & CudaKernels.KV_CENTERED) != 0;
    boolean weighted = (kvEnc & CudaKernels.KV_WEIGHTED) != 0;
    int stats = layers * kvHeads * headSize;
    float[] kMean = new float[centeredKeys ? stats : 0];
    for (int i = 0; i < kMean.length; i++) {
      kMean[i] = (float) (3 * rnd.nextGaussian());
    }
    float[] kMoment = new float[weighted ? stats * headSize : 0];
    for (int m = 0; weighted && m < layers * kvHeads; m++) {
      for (int sample = 0; sample < 8; sample++) {
        float[] qs = gaussian(rnd, headSize);
        qs[rnd.nextInt(headSize)] *= 8;
        for (int i = 0; i < headSize; i++) {
          for (int j = 0; j < headSize; j++) {
            kMoment[(m * headSize + i) * headSize + j] += qs[i] * qs[j] / 8f;
          }
        }
      }
    }

    int[] header = {
      kvType,
      heads,
      kvHeads,
      headSize,
      blockSize,
      layers,
      layer,
      rows,
      maxBlocks,
      splits,
      splitLen,
      style,
      tablePositions,
      pool.capacity(),
      scales.length,
      kvEnc,
      chans.length,
      rowsWarps,
      rowsPer
    };
    ByteBuffer in =
        ByteBuffer.allocate(
                4 * header.length
                    + 4
                    + 4 * (2 * rows + tables.length + 2 * cos.length + q.length + 2 * k.length)
                    + pool.capacity()
                    + 4 * scales.length
                    + 4 * chans.length
                    + 4 * (kMean.length + kMoment.length))
            .order(ByteOrder.LITTLE_ENDIAN);
    for (int h : header) {
      in.putInt(h);
    }
    in.putFloat(scale);
    for (int[] a : new int[][] {rowSeq, positions, tables}) {
      for (int x : a) {
        in.putInt(x);
      }
    }
    for (float[] a : new float[][] {cos, sin, q, k, v}) {
      for (float x : a) {
        in.putFloat(x);
      }
    }
    in.put(pool.array());
    for (float s : scales) {
      in.putFloat(s);
    }
    for (float[] a : new float[][] {chans, kMean, kMoment}) {
      for (float x : a) {
        in.putFloat(x);
      }
    }
    ByteBuffer out = KernelOnTheCpu.run(harness, dir, in.array());
    int qn = rows * heads * headSize;
    float[] out1 = floats(out, qn);
    byte[] pool1 = bytes(out, pool.capacity());
    float[] scales1 = floats(out, scales.length);
    float[] chans1 = floats(out, chans.length);
    float[] out2 = floats(out, qn);
    byte[] pool2 = bytes(out, pool.capacity());
    float[] scales2 = floats(out, scales.length);
    float[] chans2 = floats(out, chans.length);
    String what =
        "kv type %d, encoding %d, head size %d, style %d, %d splits, %d heads"
            .formatted(kvType, kvEnc, headSize, style, splits, heads);
    if (rowsWarps > 0) {
      // the three kernels under attention_rows' split, then attention_rows
      float[] want = floats(out, qn);
      byte[] wantPool = bytes(out, pool.capacity());
      float[] wantScales = floats(out, scales.length);
      float[] wantChans = floats(out, chans.length);
      float[] got = floats(out, qn);
      byte[] gotPool = bytes(out, pool.capacity());
      float[] gotScales = floats(out, scales.length);
      float[] gotChans = floats(out, chans.length);
      String label = what + ", attention_rows %d warps x %d tiles".formatted(rowsWarps, rowsPer);
      for (int i = 0; i < qn; i++) {
        assertThat(Float.floatToRawIntBits(got[i]))
            .as("attention_rows output %d (%s): %s vs %s", i, rows, got[i], want[i])
            .isEqualTo(Float.floatToRawIntBits(want[i]));
      }
      assertThat(gotPool).as("attention_rows pool (%s)", label).isEqualTo(wantPool);
      assertThat(gotScales).as("attention_rows scales (%s)", label).isEqualTo(wantScales);
      assertThat(gotChans).as("attention_rows channel scales (%s)", label).isEqualTo(wantChans);
      // without keys per channel, with several query heads per kv head: the harness ran the
      // block-per-query-head kernels too (forward and reversed) and they gave these same bits
      boolean perHead = !channels && heads > kvHeads;
      assertThat(out.getInt())
          .as("runs with a block per query head (%s)", label)
          .isEqualTo(perHead ? 2 : 0);
      // the two splits' outputs agree but for rounding
      for (int i = 0; i < qn; i++) {
        assertThat(want[i])
            .as("output %d, two splits (%s)", i, label)
            .isCloseTo(out1[i], offset(1e-4f));
      }
    }

    assertThat(pool1).as("the three kernels appended (%s)", what).isNotEqualTo(pool.array());
    for (int i = 0; i < qn; i++) {
      assertThat(Float.floatToRawIntBits(out2[i]))
          .as("output %d (%s): %s vs %s", i, what, out2[i], out1[i])
          .isEqualTo(Float.floatToRawIntBits(out1[i]));
    }
    assertThat(pool2).as("pool (%s)", what).isEqualTo(pool1);
    assertThat(scales2).as("scales (%s)", what).isEqualTo(scales1);
    assertThat(chans2).as("channel scales (%s)", what).isEqualTo(chans1);
    if (channels) {
      assertThat(chans1).as("the three kernels grew channel scales (%s)", what).isNotEqualTo(chans);
    }
    if (kvType == CudaKernels.DT_F32) {
      double[] want =
          reference(
              q,
              k,
              v,
              cos,
              sin,
              style,
              ByteBuffer.wrap(pool1).order(ByteOrder.LITTLE_ENDIAN),
              rowSeq,
              positions,
              tables,
              maxBlocks,
              layers,
              layer,
              heads,
              kvHeads,
              headSize,
              blockSize,
              scale);
      for (int i = 0; i < qn; i++) {
        assertThat((double) out1[i])
            .as("output %d against float64 (%s)", i, what)
            .isCloseTo(want[i], offset(2e-5 + 2e-5 * Math.abs(want[i])));
      }
    }
  }

  /**
   * Float64 attention of each row's rotated query heads over its sequence's positions {@code [0,
   * pos]}, keys and values read from the pool after the append (so the row's own key is the
   * kernels' rotation, checked here against the rotation of {@code k} too, and its value is {@code
   * v}'s).
   */
  private static double[] reference(
      float[] q,
      float[] k,
      float[] v,
      float[] cos,
      float[] sin,
      int style,
      ByteBuffer pool,
      int[] rowSeq,
      int[] positions,
      int[] tables,
      int maxBlocks,
      int layers,
      int layer,
      int heads,
      int kvHeads,
      int headSize,
      int blockSize,
      double scale) {
    int half = headSize / 2;
    int g = heads / kvHeads;
    double[] out = new double[q.length];
    for (int r = 0; r < positions.length; r++) {
      int pos = positions[r];
      for (int h = 0; h < heads; h++) {
        int kvh = h / g;
        double[] qr = rotate(q, (r * heads + h) * headSize, cos, sin, pos, half, style);
        double[] kr = rotate(k, (r * kvHeads + kvh) * headSize, cos, sin, pos, half, style);
        double[] scores = new double[pos + 1];
        double max = Double.NEGATIVE_INFINITY;
        for (int t = 0; t <= pos; t++) {
          long ko =
              kvOffset(
                  tables[rowSeq[r] * maxBlocks + t / blockSize],
                  layer,
                  0,
                  kvh,
                  t % blockSize,
                  layers,
                  kvHeads,
                  blockSize,
                  headSize);
          double s = 0;
          for (int d = 0; d < headSize; d++) {
            double kd = pool.getFloat((int) (4 * (ko + d)));
            if (t == pos) {
              assertThat(kd).as("appended key").isCloseTo(kr[d], offset(1e-5));
            }
            s += qr[d] * scale * kd;
          }
          scores[t] = s;
          max = Math.max(max, s);
        }
        double sum = 0;
        for (int t = 0; t <= pos; t++) {
          scores[t] = Math.exp(scores[t] - max);
          sum += scores[t];
        }
        for (int t = 0; t <= pos; t++) {
          long vo =
              kvOffset(
                  tables[rowSeq[r] * maxBlocks + t / blockSize],
                  layer,
                  1,
                  kvh,
                  t % blockSize,
                  layers,
                  kvHeads,
                  blockSize,
                  headSize);
          for (int d = 0; d < headSize; d++) {
            double vd = pool.getFloat((int) (4 * (vo + d)));
            if (t == pos) {
              assertThat(vd).as("appended value").isEqualTo(v[(r * kvHeads + kvh) * headSize + d]);
            }
            out[(r * heads + h) * headSize + d] += scores[t] / sum * vd;
          }
        }
      }
    }
    return out;
  }

  private static double[] rotate(
      float[] x, int off, float[] cos, float[] sin, int pos, int half, int style) {
    double[] y = new double[2 * half];
    for (int i = 0; i < half; i++) {
      int ia = style == 0 ? 2 * i : i;
      int ib = style == 0 ? 2 * i + 1 : i + half;
      double c = cos[pos * half + i];
      double s = sin[pos * half + i];
      y[ia] = x[off + ia] * c - x[off + ib] * s;
      y[ib] = x[off + ia] * s + x[off + ib] * c;
    }
    return y;
  }

  private static long kvOffset(
      long block,
      int layer,
      int kv,
      int head,
      int slot,
      int layers,
      int kvHeads,
      int blockSize,
      int headSize) {
    return ((((block * layers + layer) * 2 + kv) * kvHeads + head) * (long) blockSize + slot)
        * headSize;
  }

  private static float[] gaussian(SplittableRandom rnd, int n) {
    float[] x = new float[n];
    for (int i = 0; i < n; i++) {
      x[i] = (float) rnd.nextGaussian();
    }
    return x;
  }

  private static float[] floats(ByteBuffer b, int n) {
    float[] x = new float[n];
    for (int i = 0; i < n; i++) {
      x[i] = b.getFloat();
    }
    return x;
  }

  private static byte[] bytes(ByteBuffer b, int n) {
    byte[] x = new byte[n];
    b.get(x);
    return x;
  }

  private Path build() throws Exception {
    String src = CudaKernels.source();
    String kernel = KernelOnTheCpu.ropeToAttention(src);
    assertThat(kernel)
        .as("the cut")
        .contains("attention_merge(")
        .contains("rope_kv_append(")
        .contains("attention_rows_h128_e4m3");
    assertThat(FA_VECS).isEqualTo(CudaKernels.TILE_VECTORS);
    assertThat(src).contains("#define FA_MAX_SPLITS " + CudaKernels.MAX_ATTENTION_SPLITS + " ");
    return KernelOnTheCpu.build(
        dir,
        "attention_decode",
        kernel,
        "attention_decode_harness.cpp",
        "shim.h",
        "mq_shim.h",
        "attn_shim.h");
  }
}
