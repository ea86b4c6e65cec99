package io.kvant.cuda.device;

import static io.kvant.cuda.device.KernelReferences.maxRelError;
import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.cuda.CudaBackend;
import io.kvant.cuda.GpuFixture;
import io.kvant.engine.forward.RopeTable;
import io.kvant.engine.kv.KeyRope;
import io.kvant.engine.kv.KvCacheType;
import io.kvant.engine.kv.KvEncoders;
import io.kvant.engine.kv.KvEncoding;
import io.kvant.engine.kv.KvGeometry;
import io.kvant.engine.kv.KvScales;
import io.kvant.engine.model.RopeStyle;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.LongConsumer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Every kernel against its scalar reference on fresh random inputs (needs a GPU). */
@Tag("gpu")
class CudaKernelsGpuTest {
  private CudaBackend backend;
  private CudaDevice dev;
  private CudaKernels k;
  private final List<DeviceBuffer> buffers = new ArrayList<>();
  private final SplittableRandom rnd = new SplittableRandom(System.nanoTime());

  @BeforeEach
  void open() {
    backend = GpuFixture.backend();
    dev = backend.device();
    dev.makeCurrent();
    k = backend.kernels();
  }

  @AfterEach
  void free() {
    buffers.forEach(DeviceBuffer::close);
  }

  private float[] random(int n) {
    float[] a = new float[n];
    for (int i = 0; i < n; i++) {
      a[i] = (float) (rnd.nextDouble() * 2 - 1);
    }
    return a;
  }

  private long up(float[] a) {
    DeviceBuffer b = dev.upload(MemorySegment.ofArray(a));
    buffers.add(b);
    return b.ptr();
  }

  private long up(int[] a) {
    DeviceBuffer b = dev.upload(MemorySegment.ofArray(a));
    buffers.add(b);
    return b.ptr();
  }

  private long poisoned(long bytes) {
    DeviceBuffer b = dev.allocate(bytes);
    dev.driver().memset(b.ptr(), 0xff, bytes); // NaN everywhere: an unwritten element shows
    buffers.add(b);
    return b.ptr();
  }

  private float[] down(long ptr, int n) {
    float[] a = new float[n];
    dev.download(ptr, MemorySegment.ofArray(a));
    return a;
  }

  private int[] downInts(long ptr, int n) {
    int[] a = new int[n];
    dev.download(ptr, MemorySegment.ofArray(a));
    return a;
  }

  /** Rows of the weighted key search's scratch in {@link #centered}'s statistics. */
  private static final int PART_ROWS = 4096;

  /** Calibrated statistics of centered keys, on the host and on the device. */
  private record Centered(KvScales scales, KvEncoders.CenteredKeys cpu, KeyCentering device) {}

  /**
   * Random statistics for a centered encoding over {@code layers x kvHeads} heads of {@code hs}:
   * means of a few units (the offsets centering removes, larger than the keys' spread), and for
   * {@code CENTERED_QMSE} second moments {@code E[q q^T]} of 16 random queries with a few strong
   * channels; uploaded with RoPE's tables ({@code positions} of them, theta 10000, as the forward
   * pass's); {@code null} for an encoding that does not center.
   */
  private Centered centered(
      KvEncoding e, int layers, int kvHeads, int hs, int positions, RopeStyle style) {
    if (!e.centersKeys()) {
      return null;
    }
    KvGeometry g = new KvGeometry(layers, kvHeads, hs);
    int n = layers * kvHeads * hs;
    float[] mean = random(n);
    for (int i = 0; i < n; i++) {
      mean[i] *= 3;
    }
    float[] moment = new float[n * hs];
    for (int h = 0; h < layers * kvHeads; h++) {
      for (int s = 0; s < 16; s++) {
        float[] q = random(hs);
        q[rnd.nextInt(hs)] *= 8;
        for (int i = 0; i < hs; i++) {
          for (int j = 0; j < hs; j++) {
            moment[(h * hs + i) * hs + j] += q[i] * q[j] / 16f;
          }
        }
      }
    }
    KeyRope rope = new KeyRope(10000.0, style);
    KvScales scales = new KvScales(g, false, new float[n], new float[n], rope, mean, moment);
    long momentT = 0;
    if (e.weighsKeys()) {
      float[] t = new float[moment.length];
      for (int m = 0; m < moment.length; m += hs * hs) {
        for (int i = 0; i < hs; i++) {
          for (int j = 0; j < hs; j++) {
            t[m + j * hs + i] = moment[m + i * hs + j];
          }
        }
      }
      momentT = up(t);
    }
    RopeTable tables = new RopeTable(hs, positions, 10000.0, style);
    KeyCentering device =
        new KeyCentering(
            up(mean),
            momentT,
            up(tables.cosines()),
            up(tables.sines()),
            style == RopeStyle.ADJACENT_PAIRS ? 0 : 1);
    // the weighted search's scratch, for appends of up to PART_ROWS rows (poisoned: every part an
    // append reads must have been written by the launch before it)
    device =
        device.withParts(poisoned(CudaKernels.weightedPartsBytes(PART_ROWS, kvHeads)), PART_ROWS);
    return new Centered(scales, new KvEncoders.CenteredKeys(scales, e), device);
  }

  private static KeyCentering device(Centered c) {
    return c == null ? KeyCentering.NONE : c.device();
  }

  @ParameterizedTest
  @CsvSource({"1,8", "3,257", "7,4096", "2,2048"})
  void rmsNormMatchesTheReference(int rows, int dim) {
    float[] x = random(rows * dim);
    float[] w = random(dim);
    long out = poisoned(4L * rows * dim);
    k.rmsNorm(up(x), up(w), out, dim, 1e-5f, 0L, rows, CudaKernels.DT_F32);
    float[] ref = KernelReferences.rmsNorm(x, w, dim, 1e-5f);
    assertThat(maxRelError(down(out, rows * dim), ref)).isLessThan(1e-5);
    // Stored as BF16 for the product it feeds: the F32 result rounded once.
    long half = poisoned(2L * rows * dim);
    k.rmsNorm(up(x), up(w), half, dim, 1e-5f, 0L, rows, CudaKernels.DT_BF16);
    long back = poisoned(4L * rows * dim);
    k.embed(half, CudaKernels.DT_BF16, up(new int[rows]), back, rows * dim, 1);
    float[] got = down(back, rows * dim);
    float[] want = new float[ref.length];
    for (int i = 0; i < ref.length; i++) {
      want[i] = KernelReferences.bf16Round(ref[i]);
    }
    assertThat(maxRelError(got, want)).isLessThan(1e-2);
  }

  @Test
  void rmsNormGathersTheRowsItIsGiven() {
    int dim = 96;
    float[] x = random(5 * dim);
    float[] w = random(dim);
    int[] rows = {4, 0, 2};
    long out = poisoned(4L * rows.length * dim);
    k.rmsNorm(up(x), up(w), out, dim, 1e-6f, up(rows), rows.length, CudaKernels.DT_F32);
    float[] ref = KernelReferences.rmsNorm(x, w, dim, 1e-6f);
    float[] got = down(out, rows.length * dim);
    for (int j = 0; j < rows.length; j++) {
      for (int i = 0; i < dim; i++) {
        assertThat((double) got[j * dim + i])
            .isCloseTo(ref[rows[j] * dim + i], org.assertj.core.data.Offset.offset(1e-5));
      }
    }
  }

  @ParameterizedTest
  @CsvSource({"ADJACENT_PAIRS,4,8", "HALF_SPLIT,8,64", "HALF_SPLIT,3,128", "ADJACENT_PAIRS,32,64"})
  void ropeMatchesTheReferenceInBothConventions(RopeStyle style, int heads, int headSize) {
    int rows = 5;
    int ctx = 3000;
    float[] x = random(rows * heads * headSize);
    int[] pos = new int[rows];
    for (int i = 0; i < rows; i++) {
      pos[i] = rnd.nextInt(ctx);
    }
    RopeTable t = new RopeTable(headSize, ctx, 10000.0, style);
    long dx = up(x);
    k.rope(
        dx,
        up(pos),
        up(t.cosines()),
        up(t.sines()),
        heads,
        headSize,
        style == RopeStyle.ADJACENT_PAIRS ? 0 : 1,
        rows);
    float[] ref =
        KernelReferences.rope(x, pos, 10000.0, heads, headSize, style == RopeStyle.ADJACENT_PAIRS);
    assertThat(maxRelError(down(dx, x.length), ref)).isLessThan(1e-5);
  }

  /**
   * rope_kv_append (the decode path's one launch) gives what rope on q, rope on k and kv_append
   * give, bit for bit, for every pool type: rotated q, and the pool's codes and scales (encodings 5
   * and 13: centered-mse and centered-qmse's bits).
   */
  @ParameterizedTest
  @CsvSource({
    "0,ADJACENT_PAIRS,0",
    "1,HALF_SPLIT,0",
    "3,HALF_SPLIT,0",
    "4,ADJACENT_PAIRS,0",
    "3,ADJACENT_PAIRS,1",
    "4,HALF_SPLIT,1",
    "3,HALF_SPLIT,2",
    "4,ADJACENT_PAIRS,2",
    "3,ADJACENT_PAIRS,3",
    "4,HALF_SPLIT,5",
    "3,ADJACENT_PAIRS,5",
    "4,ADJACENT_PAIRS,13",
    "3,HALF_SPLIT,13"
  })
  void ropeWithKvAppendEqualsTheSeparateKernels(int kvType, RopeStyle style, int enc) {
    int rows = 3;
    int heads = 8;
    int kvHeads = 2;
    int hs = 64;
    int bs = 16;
    int layers = 2;
    int layer = 1;
    int maxBlocks = 4;
    int ctx = maxBlocks * bs;
    boolean coded = kvType == CudaKernels.DT_KV_I8 || kvType == CudaKernels.DT_KV_E4M3;
    int elem = coded ? 1 : kvType == CudaKernels.DT_F32 ? 4 : 2;
    int blocks = rows * maxBlocks;
    long slots = (long) blocks * layers * 2 * kvHeads * bs;
    float[] q = random(rows * heads * hs);
    float[] kk = random(rows * kvHeads * hs);
    float[] v = random(rows * kvHeads * hs);
    int[] pos = new int[rows];
    int[] rowSeq = new int[rows];
    int[] tables = new int[rows * maxBlocks];
    for (int r = 0; r < rows; r++) {
      pos[r] = rnd.nextInt(ctx);
      rowSeq[r] = r;
      for (int b = 0; b < maxBlocks; b++) {
        tables[r * maxBlocks + b] = r * maxBlocks + b;
      }
    }
    KvEncoding centeredEnc =
        (enc & CudaKernels.KV_WEIGHTED) != 0
            ? KvEncoding.CENTERED_QMSE
            : (enc & CudaKernels.KV_CENTERED) != 0 ? KvEncoding.CENTERED_MSE : KvEncoding.PER_TOKEN;
    KeyCentering centering = device(centered(centeredEnc, layers, kvHeads, hs, ctx, style));
    RopeTable t = new RopeTable(hs, ctx, 10000.0, style);
    int st = style == RopeStyle.ADJACENT_PAIRS ? 0 : 1;
    long cos = centering.centered() ? centering.cos() : up(t.cosines());
    long sin = centering.centered() ? centering.sin() : up(t.sines());
    long dPos = up(pos);
    long dSeq = up(rowSeq);
    long dTables = up(tables);
    long[] qs = {up(q), up(q)};
    long[] ks = {up(kk), up(kk)};
    long[] pools = {poisoned(slots * hs * elem), poisoned(slots * hs * elem)};
    long[] scales = coded ? new long[] {poisoned(4 * slots), poisoned(4 * slots)} : new long[2];
    boolean channels = (enc & CudaKernels.KV_KEY_CHANNELS) != 0;
    long chanFloats = (long) blocks * layers * kvHeads * hs;
    long[] chans =
        channels ? new long[] {poisoned(4 * chanFloats), poisoned(4 * chanFloats)} : new long[2];
    if (channels) {
      // Keys per channel: the same earlier slots of each row's block in both pools first (one row
      // per sequence, as decode steps), so the compared append grows and re-codes channels.
      List<int[]> prefix = new ArrayList<>();
      for (int r = 0; r < rows; r++) {
        for (int p = pos[r] / bs * bs; p < pos[r]; p++) {
          prefix.add(new int[] {r, p});
        }
      }
      if (!prefix.isEmpty()) {
        int n = prefix.size();
        int[] pSeq = new int[n];
        int[] pPos = new int[n];
        for (int i = 0; i < n; i++) {
          pSeq[i] = prefix.get(i)[0];
          pPos[i] = prefix.get(i)[1];
        }
        long pk = up(random(n * kvHeads * hs));
        long pv = up(random(n * kvHeads * hs));
        for (int i = 0; i < 2; i++) {
          k.kvAppend(
              pk, pv, pools[i], scales[i], chans[i], centering, enc, kvType, up(pSeq), up(pPos),
              dTables, maxBlocks, layer, layers, kvHeads, hs, bs, n);
        }
      }
    }
    long dv = up(v);
    for (int i = 0; i < 2; i++) {
      k.ropeAndAppendKv(
          qs[i], ks[i], dv, cos, sin, heads, st, pools[i], scales[i], chans[i], centering, enc,
          kvType, dSeq, dPos, dTables, maxBlocks, layer, layers, kvHeads, hs, bs, rows, i == 1);
    }
    if (channels) {
      assertThat(downInts(chans[1], (int) chanFloats))
          .isEqualTo(downInts(chans[0], (int) chanFloats));
    }
    assertThat(down(qs[1], q.length)).isEqualTo(down(qs[0], q.length));
    byte[][] bytes = new byte[2][(int) (slots * hs * elem)];
    for (int i = 0; i < 2; i++) {
      dev.download(pools[i], MemorySegment.ofArray(bytes[i]));
    }
    assertThat(bytes[1]).isEqualTo(bytes[0]);
    if (coded) {
      assertThat(downInts(scales[1], (int) slots)).isEqualTo(downInts(scales[0], (int) slots));
    }
  }

  /**
   * attention_decode (RoPE, the KV append, the tiled attention and its merge in one launch) gives
   * what rope_kv_append then attention_tiled (and attention_merge when split) give, bit for bit:
   * outputs, pool codes and scales, for every pool type it takes, both RoPE styles, one split or 4,
   * 32 and 64 (its last block per tile and kv head merges), and the encodings it takes beyond
   * absmax token scales (searched token scales, keys per channel over splits of whole KV blocks,
   * which may re-code their block's earlier slots). Each row's sequence holds earlier positions
   * appended first (the same bytes in both pools); a second launch into a fresh output repeats the
   * bits (the arrival counters were left at zero).
   */
  @ParameterizedTest
  @CsvSource({
    "0,ADJACENT_PAIRS,1,0",
    "1,HALF_SPLIT,4,0",
    "2,ADJACENT_PAIRS,4,0",
    "3,HALF_SPLIT,1,0",
    "3,ADJACENT_PAIRS,4,0",
    "4,HALF_SPLIT,4,0",
    "4,ADJACENT_PAIRS,1,0",
    "1,ADJACENT_PAIRS,32,0",
    "3,HALF_SPLIT,64,0",
    "3,ADJACENT_PAIRS,4,2",
    "4,HALF_SPLIT,8,3",
    "4,ADJACENT_PAIRS,1,1",
    "3,HALF_SPLIT,4,1"
  })
  void attentionDecodeEqualsTheKernelsItReplaces(int kvType, RopeStyle style, int splits, int enc) {
    DecodeRows f = decodeRows(kvType, style, 64, 8, 8, enc);
    CudaKernels.AttentionSplit split =
        splits == 1
            ? new CudaKernels.AttentionSplit(1, f.ctx())
            : new CudaKernels.AttentionSplit(splits, f.ctx() / splits);
    long want = separateKernels(f, split);
    long qb = up(f.q());
    long kb = up(f.k());
    long partial = poisoned(4 * Math.max(1, split.partialFloats(f.rows(), f.kvHeads(), f.hs())));
    long dTiles = up(CudaKernels.queryTiles(f.rowSeq(), f.rows(), 1));
    sameAsSeparateKernels(
        f,
        want,
        qb,
        out -> k.attentionDecode(f.attention(qb, kb, out), dTiles, f.rows(), split, partial),
        "%d splits".formatted(splits));
  }

  /**
   * attention_rows (a warp per range of positions, compiled per head size and KV type) gives what
   * rope_kv_append then attention_tiled (and attention_merge) give under its split of blocks x
   * warps ranges of tilesPerWarp x 32 positions, bit for bit, like attention_decode above: every KV
   * type and head size it is compiled for, both RoPE styles, three and four query heads per kv
   * head, searched token scales, keys per channel (whole KV blocks per block), and each of its
   * forms (one range; warps merged in shared memory; blocks merged by the last to arrive; warps
   * walking several tiles; 64 ranges over 2,048 positions; the plan {@code rowsPlanFor} gives a
   * one-row step), and with F16/BF16 KV a block per query head ({@code RowsPlan.perHead}: every
   * block takes the appended row from its own shared memory, one stores it).
   */
  @ParameterizedTest
  @CsvSource({
    "1,ADJACENT_PAIRS,128,8,8,0,1,4,1,false",
    "1,HALF_SPLIT,128,8,8,0,2,2,1,false",
    "2,ADJACENT_PAIRS,64,6,8,0,4,1,1,false",
    "3,HALF_SPLIT,128,8,8,0,1,1,4,false",
    "3,ADJACENT_PAIRS,32,8,8,1,1,2,2,false",
    "4,HALF_SPLIT,64,8,8,0,2,1,2,false",
    "4,ADJACENT_PAIRS,128,6,8,1,1,8,1,false",
    "1,HALF_SPLIT,32,8,8,0,2,3,1,false",
    "1,ADJACENT_PAIRS,128,8,128,0,8,8,1,false",
    "3,HALF_SPLIT,64,8,128,1,2,8,4,false",
    "1,ADJACENT_PAIRS,128,8,16,0,0,0,0,false",
    "3,ADJACENT_PAIRS,128,8,8,2,4,1,1,false",
    "4,HALF_SPLIT,64,6,8,3,1,4,1,false",
    "3,HALF_SPLIT,32,8,128,2,8,8,1,false",
    "1,ADJACENT_PAIRS,128,8,8,0,1,4,1,true",
    "2,HALF_SPLIT,64,6,8,0,1,2,2,true",
    "1,HALF_SPLIT,32,8,8,0,1,1,4,true",
    "2,ADJACENT_PAIRS,128,8,128,0,1,8,8,true",
    "1,HALF_SPLIT,128,8,128,0,8,8,1,true",
    "2,ADJACENT_PAIRS,64,6,8,0,2,1,2,true",
    "3,HALF_SPLIT,128,8,8,0,1,4,1,true",
    "4,ADJACENT_PAIRS,64,6,8,1,1,8,1,true",
    "3,ADJACENT_PAIRS,32,8,128,1,2,8,4,true",
    "4,HALF_SPLIT,128,8,16,0,0,0,0,true",
    "1,ADJACENT_PAIRS,128,8,16,0,0,0,0,true"
  })
  void attentionRowsEqualsTheKernelsItReplaces(
      int kvType,
      RopeStyle style,
      int hs,
      int heads,
      int maxBlocks,
      int enc,
      int blocks,
      int warps,
      int per,
      boolean perHead) {
    DecodeRows f = decodeRows(kvType, style, hs, heads, maxBlocks, enc);
    CudaKernels.RowsPlan kvHeadPlan =
        blocks == 0
            ? CudaKernels.rowsPlanFor(1, f.kvHeads(), f.ctx(), 132)
            : new CudaKernels.RowsPlan(blocks, warps, per);
    if (blocks == 0) {
      assertThat(kvHeadPlan)
          .as("a one-row step's plan")
          .isEqualTo(new CudaKernels.RowsPlan(1, 8, 1));
    }
    if (perHead) {
      assertThat(CudaKernels.rowsPerHeadSuits(f.rows(), f.heads(), f.kvHeads(), kvType, enc, 132))
          .as("a block per query head suits %s", kvHeadPlan)
          .isTrue();
    }
    CudaKernels.RowsPlan plan = perHead ? kvHeadPlan.withBlockPerHead() : kvHeadPlan;
    CudaKernels.AttentionSplit split =
        plan.splits() == 1
            ? new CudaKernels.AttentionSplit(1, f.ctx())
            : new CudaKernels.AttentionSplit(plan.splits(), 32 * plan.tilesPerWarp());
    long want = separateKernels(f, split);
    long qb = up(f.q());
    long kb = up(f.k());
    long partial = poisoned(4 * Math.max(1, plan.partialFloats(f.rows(), f.kvHeads(), f.hs())));
    sameAsSeparateKernels(
        f,
        want,
        qb,
        out -> k.attentionRows(f.attention(qb, kb, out), f.rows(), plan, partial),
        plan.toString());
  }

  /**
   * Decode rows of distinct sequences over a paged pool (two copies, the same bytes) whose earlier
   * positions are appended already: the inputs of attention_decode and attention_rows.
   */
  private record DecodeRows(
      int kvType,
      int enc,
      int style,
      int heads,
      int kvHeads,
      int hs,
      int bs,
      int layers,
      int layer,
      int maxBlocks,
      int[] rowSeq,
      long slots,
      int elem,
      float[] q,
      float[] k,
      long v,
      long cos,
      long sin,
      long pos,
      long seq,
      long tables,
      long[] pools,
      long[] scales,
      long[] chans,
      long chanFloats,
      float scale) {
    int rows() {
      return rowSeq.length;
    }

    int ctx() {
      return maxBlocks * bs;
    }

    boolean coded() {
      return kvType == CudaKernels.DT_KV_I8 || kvType == CudaKernels.DT_KV_E4M3;
    }

    /**
     * The one-launch attention of these rows over pool copy 1, q and k at {@code qb}, {@code kb}.
     */
    CudaKernels.DecodeAttention attention(long qb, long kb, long out) {
      return new CudaKernels.DecodeAttention(
          qb,
          kb,
          v,
          cos,
          sin,
          style,
          pools[1],
          scales[1],
          chans[1],
          enc,
          kvType,
          out,
          seq,
          pos,
          tables,
          maxBlocks,
          layer,
          layers,
          heads,
          kvHeads,
          hs,
          bs,
          scale,
          CudaKernels.DT_F32);
    }
  }

  private DecodeRows decodeRows(
      int kvType, RopeStyle style, int hs, int heads, int maxBlocks, int enc) {
    int kvHeads = 2;
    int bs = 16;
    int layers = 2;
    int layer = 1;
    int ctx = maxBlocks * bs;
    int[] pos = {0, ctx - 1, 31, 32, rnd.nextInt(ctx)};
    int rows = pos.length;
    boolean coded = kvType == CudaKernels.DT_KV_I8 || kvType == CudaKernels.DT_KV_E4M3;
    int elem = coded ? 1 : kvType == CudaKernels.DT_F32 ? 4 : 2;
    int blocks = rows * maxBlocks;
    long slots = (long) blocks * layers * 2 * kvHeads * bs;
    int[] rowSeq = {3, 0, 4, 1, 2};
    int[] tables = new int[rows * maxBlocks];
    for (int i = 0; i < tables.length; i++) {
      tables[i] = (i * 7 + 3) % blocks; // scattered, distinct (7 and 5 x 2^k are coprime)
    }
    long dTables = up(tables);
    long[] pools = {poisoned(slots * hs * elem), poisoned(slots * hs * elem)};
    long[] scales = coded ? new long[] {poisoned(4 * slots), poisoned(4 * slots)} : new long[2];
    boolean channels = (enc & CudaKernels.KV_KEY_CHANNELS) != 0;
    long chanFloats = (long) blocks * layers * kvHeads * hs;
    long[] chans =
        channels ? new long[] {poisoned(4 * chanFloats), poisoned(4 * chanFloats)} : new long[2];
    // earlier positions of every sequence, the same in both pools
    List<int[]> prefix = new ArrayList<>();
    for (int r = 0; r < rows; r++) {
      for (int p = 0; p < pos[r]; p++) {
        prefix.add(new int[] {rowSeq[r], p});
      }
    }
    int n = prefix.size();
    int[] pSeq = new int[n];
    int[] pPos = new int[n];
    for (int i = 0; i < n; i++) {
      pSeq[i] = prefix.get(i)[0];
      pPos[i] = prefix.get(i)[1];
    }
    long pk = up(random(n * kvHeads * hs));
    long pv = up(random(n * kvHeads * hs));
    for (int i = 0; i < 2; i++) {
      k.kvAppend(
          pk,
          pv,
          pools[i],
          scales[i],
          chans[i],
          KeyCentering.NONE,
          enc,
          kvType,
          up(pSeq),
          up(pPos),
          dTables,
          maxBlocks,
          layer,
          layers,
          kvHeads,
          hs,
          bs,
          n);
    }
    RopeTable t = new RopeTable(hs, ctx, 10000.0, style);
    return new DecodeRows(
        kvType,
        enc,
        style == RopeStyle.ADJACENT_PAIRS ? 0 : 1,
        heads,
        kvHeads,
        hs,
        bs,
        layers,
        layer,
        maxBlocks,
        rowSeq,
        slots,
        elem,
        random(rows * heads * hs),
        random(rows * kvHeads * hs),
        up(random(rows * kvHeads * hs)),
        up(t.cosines()),
        up(t.sines()),
        up(pos),
        up(rowSeq),
        dTables,
        pools,
        scales,
        chans,
        chanFloats,
        (float) (1 / Math.sqrt(hs)));
  }

  /** rope_kv_append then attention_tiled (and its merge) into pool 0 under split: the output. */
  private long separateKernels(DecodeRows f, CudaKernels.AttentionSplit split) {
    int[] tiles =
        CudaKernels.queryTiles(f.rowSeq(), f.rows(), k.tiledRows(f.heads(), f.kvHeads(), f.hs()));
    assertThat(tiles.length / 2).as("one tile per row").isEqualTo(f.rows());
    long dTiles = up(tiles);
    long out = poisoned(4L * f.q().length);
    long qa = up(f.q());
    long ka = up(f.k());
    k.ropeAndAppendKv(
        qa,
        ka,
        f.v(),
        f.cos(),
        f.sin(),
        f.heads(),
        f.style(),
        f.pools()[0],
        f.scales()[0],
        f.chans()[0],
        KeyCentering.NONE,
        f.enc(),
        f.kvType(),
        f.seq(),
        f.pos(),
        f.tables(),
        f.maxBlocks(),
        f.layer(),
        f.layers(),
        f.kvHeads(),
        f.hs(),
        f.bs(),
        f.rows(),
        true);
    k.attentionTiled(
        qa,
        f.pools()[0],
        f.scales()[0],
        f.chans()[0],
        KeyCentering.NONE,
        f.kvType(),
        out,
        f.seq(),
        f.pos(),
        f.tables(),
        f.maxBlocks(),
        f.layer(),
        f.layers(),
        f.heads(),
        f.kvHeads(),
        f.hs(),
        f.bs(),
        f.scale(),
        dTiles,
        dTiles + 4L * f.rows(),
        f.rows(),
        split,
        poisoned(4 * Math.max(1, split.partialFloats(f.rows(), f.kvHeads(), f.hs()))),
        CudaKernels.DT_F32);
    return out;
  }

  /**
   * Runs {@code launch} (the one-launch kernel on pool 1, queries at {@code qb}) into a fresh
   * output, twice, and checks it against the separate kernels' output {@code want} and pool 0:
   * outputs, pool codes, scales and channel scales to the bit, the queries left unrotated.
   */
  private void sameAsSeparateKernels(
      DecodeRows f, long want, long qb, LongConsumer launch, String what) {
    int qn = f.q().length;
    long out = poisoned(4L * qn);
    launch.accept(out);
    for (float x : down(want, qn)) {
      assertThat(Float.isNaN(x)).as("the separate kernels wrote every output").isFalse();
    }
    assertThat(downInts(out, qn)).as("outputs, %s", what).isEqualTo(downInts(want, qn));
    byte[][] bytes = new byte[2][(int) (f.slots() * f.hs() * f.elem())];
    for (int i = 0; i < 2; i++) {
      dev.download(f.pools()[i], MemorySegment.ofArray(bytes[i]));
    }
    assertThat(bytes[1]).as("pool").isEqualTo(bytes[0]);
    if (f.coded()) {
      int n = (int) f.slots();
      assertThat(downInts(f.scales()[1], n)).isEqualTo(downInts(f.scales()[0], n));
    }
    if (f.chans()[0] != 0) {
      int n = (int) f.chanFloats();
      assertThat(downInts(f.chans()[1], n))
          .as("channel scales")
          .isEqualTo(downInts(f.chans()[0], n));
    }
    assertThat(down(qb, qn)).as("q left unrotated").isEqualTo(f.q());
    long again = poisoned(4L * qn);
    launch.accept(again);
    assertThat(downInts(again, qn)).as("a second launch").isEqualTo(downInts(want, qn));
  }

  @Test
  void swigluAndAddMatchTheReference() {
    int n = 100_003;
    float[] g = random(n);
    float[] u = random(n);
    long out = poisoned(4L * n);
    k.swiglu(up(g), up(u), out, n, CudaKernels.DT_F32);
    assertThat(maxRelError(down(out, n), KernelReferences.swiglu(g, u))).isLessThan(1e-6);
    float[] a = random(n);
    long da = up(a);
    k.addInPlace(da, up(g), n);
    float[] sum = down(da, n);
    for (int i = 0; i < n; i++) {
      assertThat(sum[i]).isEqualTo(a[i] + g[i]);
    }
  }

  @Test
  void castRoundsToNearestAndEmbedDecodesEveryType() {
    int n = 10_001;
    float[] x = random(n);
    long dx = up(x);
    for (int dtype : new int[] {CudaKernels.DT_F16, CudaKernels.DT_BF16}) {
      long half = poisoned(2L * n);
      k.cast(dx, half, dtype, n);
      // Embedding row 0 of a [1][n] table decodes it back to F32.
      long back = poisoned(4L * n);
      k.embed(half, dtype, up(new int[] {0}), back, n, 1);
      float[] got = down(back, n);
      for (int i = 0; i < n; i++) {
        float want =
            dtype == CudaKernels.DT_F16
                ? KernelReferences.f16Round(x[i])
                : KernelReferences.bf16Round(x[i]);
        assertThat(got[i]).isEqualTo(want);
      }
    }
  }

  @Test
  void addBiasAddsPerColumn() {
    int rows = 7;
    int width = 33;
    float[] x = random(rows * width);
    float[] b = random(width);
    long dx = up(x);
    k.addBias(dx, up(b), width, rows);
    float[] got = down(dx, x.length);
    for (int i = 0; i < x.length; i++) {
      assertThat(got[i]).isEqualTo(x[i] + b[i % width]);
    }
  }

  /**
   * Paged attention: several sequences of mixed lengths (decode rows, and a prefill chunk whose
   * rows are causal within the chunk), blocks scattered in the pool, GQA.
   */
  @ParameterizedTest
  @CsvSource({
    "8,8,64,16,F32,PER_TOKEN",
    "8,2,64,16,F32,PER_TOKEN",
    "8,1,128,32,F32,PER_TOKEN",
    "32,8,128,16,F16,PER_TOKEN",
    "4,4,8,32,F16,PER_TOKEN",
    "16,2,256,16,F32,PER_TOKEN",
    "8,2,64,16,I8,PER_TOKEN",
    "32,8,128,16,I8,PER_TOKEN",
    "8,2,64,16,E4M3,PER_TOKEN",
    "32,8,128,32,E4M3,PER_TOKEN",
    "4,4,8,16,I8,PER_TOKEN",
    "8,8,8,32,E4M3,PER_TOKEN",
    "8,2,64,16,I8,PER_TOKEN_MSE",
    "8,8,64,32,E4M3,PER_TOKEN_MSE",
    "8,1,128,16,E4M3,PER_TOKEN_MSE",
    "4,4,8,16,E4M3,PER_TOKEN_MSE",
    "8,2,64,16,I8,KIVI",
    "32,8,128,32,I8,KIVI",
    "8,1,128,16,I8,KIVI",
    "4,4,8,16,I8,KIVI",
    "8,8,64,32,E4M3,KIVI",
    "16,2,64,16,E4M3,KIVI",
    "8,2,64,32,I8,KIVI_MSE",
    "8,1,64,16,E4M3,KIVI_MSE",
    "4,4,8,32,I8,KIVI_MSE",
    "8,2,64,16,E4M3,CENTERED_MSE",
    "4,4,8,32,E4M3,CENTERED_MSE",
    "16,4,64,16,I8,CENTERED_MSE",
    "8,8,64,16,E4M3,CENTERED_QMSE",
    "8,2,128,32,E4M3,CENTERED_QMSE",
    "4,1,128,16,I8,CENTERED_QMSE",
    "8,8,8,16,E4M3,CENTERED_QMSE"
  })
  void pagedAttentionMatchesTheReference(
      int heads, int kvHeads, int hs, int blockSize, String kvType, KvEncoding encoding) {
    int kvDtype =
        switch (kvType) {
          case "F16" -> CudaKernels.DT_F16;
          case "I8" -> CudaKernels.DT_KV_I8;
          case "E4M3" -> CudaKernels.DT_KV_E4M3;
          default -> CudaKernels.DT_F32;
        };
    boolean coded = kvDtype == CudaKernels.DT_KV_I8 || kvDtype == CudaKernels.DT_KV_E4M3;
    int[] lengths = {1, 17, 300, 4096, 33};
    int layers = 2;
    int layer = 1;
    int seqs = lengths.length;
    int maxBlocks = (4096 + blockSize - 1) / blockSize;
    int totalBlocks = 0;
    for (int len : lengths) {
      totalBlocks += (len + blockSize - 1) / blockSize;
    }
    // A shuffled assignment of pool blocks to sequences.
    int[] perm = new int[totalBlocks + 3];
    for (int i = 0; i < perm.length; i++) {
      perm[i] = i;
    }
    for (int i = perm.length - 1; i > 0; i--) {
      int j = rnd.nextInt(i + 1);
      int t = perm[i];
      perm[i] = perm[j];
      perm[j] = t;
    }
    int[] tables = new int[seqs * maxBlocks];
    int next = 0;
    for (int s = 0; s < seqs; s++) {
      for (int b = 0; b < (lengths[s] + blockSize - 1) / blockSize; b++) {
        tables[s * maxBlocks + b] = perm[next++];
      }
    }
    int kvDim = kvHeads * hs;
    int elem = coded ? 1 : kvDtype == CudaKernels.DT_F16 ? 2 : 4;
    long poolBytes = (long) perm.length * layers * 2 * kvDim * blockSize * elem;
    long pool = poisoned(poolBytes);
    long scales = coded ? poisoned((long) perm.length * layers * 2 * kvHeads * blockSize * 4) : 0;
    int enc = coded ? encodingBits(encoding) : 0;
    long channels =
        (enc & CudaKernels.KV_KEY_CHANNELS) == 0
            ? 0
            : poisoned((long) perm.length * layers * kvHeads * hs * 4);
    long dTables = up(tables);
    // Centered keys: the offset each score gets back is checked against keys decoded + R(t) m.
    Centered centered = centered(encoding, layers, kvHeads, hs, 4096, RopeStyle.HALF_SPLIT);
    KeyCentering centering = device(centered);
    float[][] keys = new float[seqs][];
    float[][] values = new float[seqs][];
    // Append every sequence's K/V through kv_append (rows = its positions).
    for (int s = 0; s < seqs; s++) {
      int len = lengths[s];
      keys[s] = random(len * kvDim);
      values[s] = random(len * kvDim);
      int[] pos = new int[len];
      int[] rowSeq = new int[len];
      for (int t = 0; t < len; t++) {
        pos[t] = t;
        rowSeq[t] = s;
      }
      k.kvAppend(
          up(keys[s]),
          up(values[s]),
          pool,
          scales,
          channels,
          centering,
          enc,
          kvDtype,
          up(rowSeq),
          up(pos),
          dTables,
          maxBlocks,
          layer,
          layers,
          kvHeads,
          hs,
          blockSize,
          len);
      if (coded) {
        // The codes and scales kv_append wrote equal the CPU encoder's, bit for bit; the
        // reference then attends over the decoded values.
        int[] table = java.util.Arrays.copyOfRange(tables, s * maxBlocks, (s + 1) * maxBlocks);
        expectCpuEncoding(
            encoding,
            centered,
            kvDtype,
            pool,
            scales,
            channels,
            perm.length,
            table,
            keys[s],
            values[s],
            len,
            layer,
            layers,
            kvHeads,
            hs,
            blockSize);
      }
      if (kvDtype == CudaKernels.DT_F16) {
        for (int i = 0; i < keys[s].length; i++) {
          keys[s][i] = KernelReferences.f16Round(keys[s][i]);
          values[s][i] = KernelReferences.f16Round(values[s][i]);
        }
      }
    }
    // Query rows: the last position of each sequence (decode), plus a 9-row causal chunk at the
    // end of the 300-long sequence and a 37-row one at the end of the 4096-long one (prefill: the
    // tiled kernel cuts it 16 + 16 + 5).
    List<int[]> rowList = new ArrayList<>();
    for (int s = 0; s < seqs; s++) {
      rowList.add(new int[] {s, lengths[s] - 1});
    }
    for (int t = 291; t < 300; t++) {
      rowList.add(new int[] {2, t});
    }
    for (int t = 4059; t < 4096; t++) {
      rowList.add(new int[] {3, t});
    }
    int rows = rowList.size();
    int[] rowSeq = new int[rows];
    int[] pos = new int[rows];
    for (int r = 0; r < rows; r++) {
      rowSeq[r] = rowList.get(r)[0];
      pos[r] = rowList.get(r)[1];
    }
    float[] q = random(rows * heads * hs);
    long out = poisoned(4L * rows * heads * hs);
    k.attention(
        up(q),
        pool,
        scales,
        channels,
        centering,
        kvDtype,
        out,
        up(rowSeq),
        up(pos),
        dTables,
        maxBlocks,
        layer,
        layers,
        heads,
        kvHeads,
        hs,
        blockSize,
        (float) (1 / Math.sqrt(hs)),
        rows,
        CudaKernels.DT_F32);
    float[] ref = KernelReferences.attention(q, keys, values, rowSeq, pos, heads, kvHeads, hs);
    assertThat(maxRelError(down(out, ref.length), ref)).isLessThan(coded ? 1e-4 : 2e-5);
    // The first rows alone (decode rows of the longest sequences first): few enough (row, head)
    // blocks for one wave, which attention_wide serves.
    int few = Math.max(1, Math.min(seqs, dev.multiprocessors() / heads));
    long wide = poisoned(4L * few * heads * hs);
    k.attention(
        up(q),
        pool,
        scales,
        channels,
        centering,
        kvDtype,
        wide,
        up(rowSeq),
        up(pos),
        dTables,
        maxBlocks,
        layer,
        layers,
        heads,
        kvHeads,
        hs,
        blockSize,
        (float) (1 / Math.sqrt(hs)),
        few,
        CudaKernels.DT_F32);
    float[] refFew = java.util.Arrays.copyOf(ref, few * heads * hs);
    assertThat(maxRelError(down(wide, refFew.length), refFew))
        .as("attention_wide, %d rows", few)
        .isLessThan(coded ? 1e-4 : 2e-5);

    // The same rows through the flash-style kernel, tile by tile (tiles of rows of one sequence
    // times the query heads of one kv head), in one pass over the positions and split into ranges
    // of 64 positions merged afterwards (as decode steps run it).
    int rowsPerTile = k.tiledRows(heads, kvHeads, hs);
    assertThat(rowsPerTile).isEqualTo(CudaKernels.TILE_VECTORS / (heads / kvHeads));
    int[] tiles = CudaKernels.queryTiles(rowSeq, rows, rowsPerTile);
    int tileCount = tiles.length / 2;
    long dTiles = up(tiles);
    for (CudaKernels.AttentionSplit split :
        List.of(new CudaKernels.AttentionSplit(1, 4096), new CudaKernels.AttentionSplit(64, 64))) {
      long partial =
          dev.allocate(4 * Math.max(1, split.partialFloats(tileCount, kvHeads, hs))).ptr();
      long tiled = poisoned(4L * rows * heads * hs);
      k.attentionTiled(
          up(q),
          pool,
          scales,
          channels,
          centering,
          kvDtype,
          tiled,
          up(rowSeq),
          up(pos),
          dTables,
          maxBlocks,
          layer,
          layers,
          heads,
          kvHeads,
          hs,
          blockSize,
          (float) (1 / Math.sqrt(hs)),
          dTiles,
          dTiles + 4L * tileCount,
          tileCount,
          split,
          partial,
          CudaKernels.DT_F32);
      assertThat(maxRelError(down(tiled, ref.length), ref))
          .as("attention_tiled, %d splits", split.splits())
          .isLessThan(coded ? 1e-4 : 2e-5);
    }
  }

  /**
   * kv_append with each new encoding, over launches that mix sequences and write each one in chunks
   * of 1 to blockSize + 3 rows (so blocks fill across launches, and a launch holds several rows of
   * one block): the codes and scales equal the CPU encoder's, bit for bit. Keys grow along the
   * block, with spikes and zeros, so channels are re-scaled and earlier codes re-coded. Centered
   * keys (random means and query moments) against {@link KvEncoders.CenteredKeys}, bit for bit too:
   * the kernel rounds each product, sum and division as the CPU does, in the CPU's order.
   */
  @ParameterizedTest
  @CsvSource({
    "PER_TOKEN_MSE,I8,64,16",
    "PER_TOKEN_MSE,E4M3,128,32",
    "PER_TOKEN_MSE,E4M3,8,16",
    "KIVI,I8,64,16",
    "KIVI,I8,128,32",
    "KIVI,E4M3,64,16",
    "KIVI,E4M3,8,32",
    "KIVI_MSE,I8,64,32",
    "KIVI_MSE,E4M3,128,16",
    "CENTERED_MSE,E4M3,64,16",
    "CENTERED_MSE,I8,8,16",
    "CENTERED_MSE,E4M3,256,16",
    "CENTERED_QMSE,E4M3,128,32",
    "CENTERED_QMSE,I8,64,16",
    "CENTERED_QMSE,E4M3,8,16",
    "CENTERED_QMSE,E4M3,256,16"
  })
  void encodedAppendInMixedLaunchesEqualsTheCpuEncoder(
      KvEncoding encoding, String type, int hs, int bs) {
    int kvDtype = type.equals("I8") ? CudaKernels.DT_KV_I8 : CudaKernels.DT_KV_E4M3;
    int enc = encodingBits(encoding);
    int kvHeads = 2;
    int kvDim = kvHeads * hs;
    int layers = 2;
    int layer = 1;
    int[] lengths = {3 * bs + 5, 2 * bs, 7, 1};
    int seqs = lengths.length;
    int maxBlocks = 4;
    int poolBlocks = seqs * maxBlocks + 1;
    int[] tables = new int[seqs * maxBlocks];
    for (int i = 0; i < tables.length; i++) {
      tables[i] = (i * 7 + 3) % (poolBlocks - 1); // scattered, distinct (7 and 16 are coprime)
    }
    float[][] keys = new float[seqs][];
    float[][] values = new float[seqs][];
    for (int s = 0; s < seqs; s++) {
      keys[s] = random(lengths[s] * kvDim);
      values[s] = random(lengths[s] * kvDim);
      for (int t = 0; t < lengths[s]; t++) {
        for (int i = 0; i < kvDim; i++) {
          double u = rnd.nextDouble();
          float grow = 1 + 0.25f * (t % bs);
          // exact +0 (not -0: a negative times 0), spikes, and growth along the block
          keys[s][t * kvDim + i] =
              u < 0.05 ? 0f : keys[s][t * kvDim + i] * (u < 0.15 ? 6 : 1) * grow;
          values[s][t * kvDim + i] = u < 0.05 ? 0f : values[s][t * kvDim + i] * (u < 0.1 ? 8 : 1);
        }
      }
      if (lengths[s] > bs + 2) {
        java.util.Arrays.fill(keys[s], (bs + 2) * kvDim, (bs + 3) * kvDim, 0f); // all-zero
        java.util.Arrays.fill(values[s], (bs + 2) * kvDim, (bs + 3) * kvDim, 0f);
      }
    }
    long pool = poisoned((long) poolBlocks * layers * 2 * kvDim * bs);
    long scales = poisoned((long) poolBlocks * layers * 2 * kvHeads * bs * 4);
    long channels =
        (enc & CudaKernels.KV_KEY_CHANNELS) == 0
            ? 0
            : poisoned((long) poolBlocks * layers * kvHeads * hs * 4);
    long dTables = up(tables);
    Centered centered =
        centered(encoding, layers, kvHeads, hs, maxBlocks * bs, RopeStyle.ADJACENT_PAIRS);
    int[] written = new int[seqs];
    while (true) {
      List<Integer> rowSeqs = new ArrayList<>();
      List<Integer> rowPos = new ArrayList<>();
      for (int s = 0; s < seqs; s++) {
        int n = Math.min(lengths[s] - written[s], 1 + rnd.nextInt(bs + 3));
        for (int i = 0; i < n; i++) {
          rowSeqs.add(s);
          rowPos.add(written[s] + i);
        }
      }
      int rows = rowSeqs.size();
      if (rows == 0) {
        break;
      }
      float[] kk = new float[rows * kvDim];
      float[] vv = new float[rows * kvDim];
      int[] rowSeq = new int[rows];
      int[] pos = new int[rows];
      for (int r = 0; r < rows; r++) {
        rowSeq[r] = rowSeqs.get(r);
        pos[r] = rowPos.get(r);
        System.arraycopy(keys[rowSeq[r]], pos[r] * kvDim, kk, r * kvDim, kvDim);
        System.arraycopy(values[rowSeq[r]], pos[r] * kvDim, vv, r * kvDim, kvDim);
        written[rowSeq[r]]++;
      }
      k.kvAppend(
          up(kk),
          up(vv),
          pool,
          scales,
          channels,
          device(centered),
          enc,
          kvDtype,
          up(rowSeq),
          up(pos),
          dTables,
          maxBlocks,
          layer,
          layers,
          kvHeads,
          hs,
          bs,
          rows);
    }
    for (int s = 0; s < seqs; s++) {
      expectCpuEncoding(
          encoding,
          centered,
          kvDtype,
          pool,
          scales,
          channels,
          poolBlocks,
          java.util.Arrays.copyOfRange(tables, s * maxBlocks, (s + 1) * maxBlocks),
          keys[s],
          values[s],
          lengths[s],
          layer,
          layers,
          kvHeads,
          hs,
          bs);
    }
  }

  /** The kernels' encoding bits of {@code e} (as CudaKvPool sets them). */
  static int encodingBits(KvEncoding e) {
    return (e.valueScaling() == KvEncoding.Scaling.TOKEN_MSE ? CudaKernels.KV_TOKEN_MSE : 0)
        | (e.keyScaling() == KvEncoding.Scaling.BLOCK_CHANNEL ? CudaKernels.KV_KEY_CHANNELS : 0)
        | (e.centersKeys() ? CudaKernels.KV_CENTERED : 0)
        | (e.weighsKeys() ? CudaKernels.KV_WEIGHTED : 0);
  }

  /**
   * Asserts that the pool holds, for the {@code len} positions of one sequence (its blocks {@code
   * table[t / blockSize]}; keys and values {@code [len][kvHeads][hs]}, written in position order),
   * exactly the codes and scales that the CPU's encoders ({@link KvEncoders}) write for {@code
   * encoding}, then replaces {@code keys} and {@code values} by their decoded values ({@code s *
   * value(code)}; centered keys ({@code centered} non-null, written at the pool's {@code layer} of
   * its statistics) plus {@code R(t) m}, the key a score reads) for the attention reference.
   */
  private void expectCpuEncoding(
      KvEncoding encoding,
      Centered centered,
      int kvDtype,
      long pool,
      long scales,
      long channels,
      int poolBlocks,
      int[] table,
      float[] keys,
      float[] values,
      int len,
      int layer,
      int layers,
      int kvHeads,
      int hs,
      int blockSize) {
    KvCacheType type = kvDtype == CudaKernels.DT_KV_I8 ? KvCacheType.INT8 : KvCacheType.FP8_E4M3;
    int kvDim = kvHeads * hs;
    byte[] codes = new byte[(int) ((long) poolBlocks * layers * 2 * kvDim * blockSize)];
    dev.download(pool, MemorySegment.ofArray(codes));
    float[] sc = down(scales, poolBlocks * layers * 2 * kvHeads * blockSize);
    float[] ch = channels == 0 ? null : down(channels, poolBlocks * layers * kvHeads * hs);
    boolean keyChannels = encoding.keyScaling() == KvEncoding.Scaling.BLOCK_CHANNEL;
    int blocks = (len + blockSize - 1) / blockSize;
    // the CPU's per-channel state of each (block of the sequence, head): scales and the codes
    float[][] chScales = new float[blocks * kvHeads][hs];
    byte[][] chCodes = new byte[blocks * kvHeads][blockSize * hs];
    for (int t = 0; t < len; t++) {
      int block = table[t / blockSize];
      for (int h = 0; h < kvHeads; h++) {
        for (int which = 0; which < 2; which++) {
          float[] src = which == 0 ? keys : values;
          int off = t * kvDim + h * hs;
          long o =
              ((((long) block * layers + layer) * 2 + which) * kvHeads + h) * blockSize
                  + t % blockSize;
          if (which == 0 && keyChannels) {
            int i = (t / blockSize) * kvHeads + h;
            KvEncoders.blockChannel(
                type, src, off, hs, chScales[i], 0, chCodes[i], 0, t % blockSize);
            continue;
          }
          byte[] want = new byte[hs];
          KvEncoding.Scaling scaling = which == 0 ? encoding.keyScaling() : encoding.valueScaling();
          boolean centeredKey = which == 0 && centered != null;
          float scale =
              centeredKey
                  ? centered.cpu().encode(type, layer, h, t, src, off, want, 0)
                  : scaling == KvEncoding.Scaling.TOKEN_MSE
                      ? KvEncoders.tokenMse(type, src, off, hs, want, 0)
                      : KvEncoders.perToken(type, src, off, hs, want, 0);
          float[] offset = new float[hs];
          if (centeredKey) {
            centered.cpu().rotatedMean(layer, h, t, offset, 0);
          }
          assertThat(sc[(int) o])
              .as("%s scale of pos %d head %d %s", encoding, t, h, which == 0 ? "k" : "v")
              .isEqualTo(scale);
          for (int d = 0; d < hs; d++) {
            assertThat(codes[(int) (o * hs + d)])
                .as("%s code of pos %d head %d %s dim %d", encoding, t, h, which, d)
                .isEqualTo(want[d]);
            src[off + d] = scale * KvEncoders.value(type, want[d]) + offset[d];
          }
        }
      }
    }
    if (!keyChannels) {
      return;
    }
    for (int t = 0; t < len; t++) {
      int b = t / blockSize;
      int block = table[b];
      for (int h = 0; h < kvHeads; h++) {
        int i = b * kvHeads + h;
        long cBase = (((long) block * layers + layer) * kvHeads + h) * hs;
        long o = ((((long) block * layers + layer) * 2) * kvHeads + h) * blockSize + t % blockSize;
        for (int d = 0; d < hs; d++) {
          if (t % blockSize == 0) {
            assertThat(ch[(int) (cBase + d)])
                .as("%s channel scale of block %d head %d dim %d", encoding, b, h, d)
                .isEqualTo(chScales[i][d]);
          }
          byte want = chCodes[i][(t % blockSize) * hs + d];
          assertThat(codes[(int) (o * hs + d)])
              .as("%s key code of pos %d head %d dim %d", encoding, t, h, d)
              .isEqualTo(want);
          keys[t * kvDim + h * hs + d] = chScales[i][d] * KvEncoders.value(type, want);
        }
      }
    }
  }

  @Test
  void greedySamplingIsTheArgmaxWithTheLowestIdAmongTies() {
    int rows = 6;
    int vocab = 128_256;
    float[] logits = random(rows * vocab);
    logits[3 * vocab + 1000] = 5f;
    logits[3 * vocab + 77] = 5f; // tie: the lower id wins
    int[] ids = sample(logits, rows, vocab, new float[rows], new int[rows], ones(rows));
    for (int r = 0; r < rows; r++) {
      int best = 0;
      for (int i = 1; i < vocab; i++) {
        if (logits[r * vocab + i] > logits[r * vocab + best]) {
          best = i;
        }
      }
      assertThat(ids[r]).isEqualTo(best);
    }
    assertThat(ids[3]).isEqualTo(77);
  }

  @Test
  void topKOfOneIsGreedyAndTopPKeepsOnlyTheNucleus() {
    int rows = 64;
    int vocab = 32_000;
    float[] logits = random(rows * vocab);
    float[] temp = new float[rows];
    java.util.Arrays.fill(temp, 1.3f);
    int[] topK = new int[rows];
    java.util.Arrays.fill(topK, 1);
    int[] ids = sample(logits, rows, vocab, temp, topK, ones(rows));
    for (int r = 0; r < rows; r++) {
      int best = 0;
      for (int i = 1; i < vocab; i++) {
        if (logits[r * vocab + i] > logits[r * vocab + best]) {
          best = i;
        }
      }
      assertThat(ids[r]).isEqualTo(best);
    }
    // One dominant token holding ~90% of the mass: top_p = 0.5 must always pick it.
    float[] peaked = random(rows * vocab);
    for (int r = 0; r < rows; r++) {
      peaked[r * vocab + 4242] = 20f;
    }
    float[] topP = new float[rows];
    java.util.Arrays.fill(topP, 0.5f);
    ids = sample(peaked, rows, vocab, temp, new int[rows], topP);
    for (int r = 0; r < rows; r++) {
      assertThat(ids[r]).isEqualTo(4242);
    }
  }

  @Test
  void temperatureSamplingFollowsTheSoftmax() {
    // 4,000 rows of the same 4-token distribution, each with its own seed: frequencies within 4
    // standard deviations of softmax(logits / T).
    int rows = 4000;
    int vocab = 4;
    float[] base = {1.0f, 0.0f, -1.0f, 0.5f};
    float t = 0.8f;
    float[] logits = new float[rows * vocab];
    for (int r = 0; r < rows; r++) {
      System.arraycopy(base, 0, logits, r * vocab, vocab);
    }
    float[] temp = new float[rows];
    java.util.Arrays.fill(temp, t);
    int[] ids = sample(logits, rows, vocab, temp, new int[rows], ones(rows));
    double z = 0;
    double[] p = new double[vocab];
    for (int i = 0; i < vocab; i++) {
      p[i] = Math.exp(base[i] / t);
      z += p[i];
    }
    int[] counts = new int[vocab];
    for (int id : ids) {
      counts[id]++;
    }
    for (int i = 0; i < vocab; i++) {
      double expect = rows * p[i] / z;
      double sd = Math.sqrt(rows * (p[i] / z) * (1 - p[i] / z));
      assertThat((double) counts[i]).isCloseTo(expect, org.assertj.core.data.Offset.offset(4 * sd));
    }
  }

  /**
   * Rows of every shape the threshold search meets (spread and peaked logits, heavy ties, masked
   * and NaN tokens, an outlier that stretches the first bins, one value everywhere) under top-k,
   * top-p and both: each sampled id must lie where the double-precision reference puts it, within
   * the rounding of the draw (u moved by 2e-5 of the mass) and of top-p's target (p moved by 1e-5
   * of it), and the same seeds must draw the same ids again.
   */
  @ParameterizedTest
  @CsvSource({"1000", "32000", "128256"})
  void samplingMatchesTheReferenceOnRandomRows(int vocab) {
    SampleRows t = SampleRows.random(rnd, SampleRows.SHAPES * 12, vocab);
    int[] ids = sampleSeeded(t);
    assertThat(sampleSeeded(t)).as("same seeds, same ids").isEqualTo(ids);
    int exact = t.check(ids);
    System.out.printf(
        "sample vs reference, vocab %d: %d rows, %d with one possible id%n",
        vocab, t.rows(), exact);
  }

  private int[] sampleSeeded(SampleRows t) {
    DeviceBuffer s = dev.upload(MemorySegment.ofArray(t.seeds()));
    buffers.add(s);
    long out = poisoned(4L * t.rows());
    k.sample(
        up(t.logits()),
        t.vocab(),
        up(t.temp()),
        up(t.topK()),
        up(t.topP()),
        up(t.minP()),
        s.ptr(),
        out,
        t.rows());
    return downInts(out, t.rows());
  }

  private static float[] ones(int n) {
    float[] a = new float[n];
    java.util.Arrays.fill(a, 1f);
    return a;
  }

  private int[] sample(
      float[] logits, int rows, int vocab, float[] temp, int[] topK, float[] topP) {
    long[] seeds = new long[rows];
    for (int r = 0; r < rows; r++) {
      seeds[r] = rnd.nextLong();
    }
    return sampleSeeded(
        new SampleRows(rows, vocab, logits, temp, topK, topP, new float[rows], seeds));
  }

  @ParameterizedTest
  @CsvSource({"0,1,64,64", "0,3,257,129", "2,1,4096,4096", "2,16,1000,2048", "1,5,300,96"})
  void gemmMatchesTheReference(int dtype, int n, int out, int in) {
    float[] w = random(out * in);
    float[] x = random(n * in);
    Gemm gemm = new Gemm(dev);
    try {
      long dw = up(w);
      long dx = up(x);
      float[] wRef = w;
      float[] xRef = x;
      if (dtype != CudaKernels.DT_F32) {
        long tw = poisoned(2L * w.length);
        k.cast(dw, tw, dtype, w.length);
        long tx = poisoned(2L * x.length);
        k.cast(dx, tx, dtype, x.length);
        dw = tw;
        dx = tx;
        wRef = w.clone();
        xRef = x.clone();
        for (float[] a : new float[][] {wRef, xRef}) {
          for (int i = 0; i < a.length; i++) {
            a[i] =
                dtype == CudaKernels.DT_F16
                    ? KernelReferences.f16Round(a[i])
                    : KernelReferences.bf16Round(a[i]);
          }
        }
      }
      long y = poisoned(4L * n * out);
      gemm.multiply(dtype, dw, out, in, dx, n, y, false);
      float[] ref = KernelReferences.matmul(wRef, out, in, xRef, n);
      assertThat(maxRelError(down(y, n * out), ref)).isLessThan(1e-5);
      // accumulate = true adds onto what is there
      gemm.multiply(dtype, dw, out, in, dx, n, y, true);
      float[] twice = down(y, n * out);
      for (int i = 0; i < ref.length; i++) {
        ref[i] *= 2;
      }
      assertThat(maxRelError(twice, ref)).isLessThan(1e-5);
    } finally {
      gemm.close();
    }
  }
}
