package io.kvant.cuda.model;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import io.kvant.cuda.device.CudaDevice;
import io.kvant.cuda.device.CudaKernels;
import io.kvant.cuda.device.DeviceBuffer;
import io.kvant.cuda.device.Gemm;
import io.kvant.cuda.device.KeyCentering;
import io.kvant.engine.forward.Batch;
import io.kvant.engine.forward.DeviceSampling;
import io.kvant.engine.forward.ForwardPass;
import io.kvant.engine.forward.RopeTable;
import io.kvant.engine.kv.BlockTables;
import io.kvant.engine.kv.KvStore;
import io.kvant.engine.model.LlamaConfig;
import io.kvant.engine.model.RopeStyle;
import io.kvant.engine.tensor.ComputePool;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.HashMap;
import java.util.Map;
import java.util.Objects;

/**
 * The batched forward pass on the GPU: the same computation as the CPU {@code Transformer}, with
 * the weights of one {@link DeviceModel} and the keys and values in a {@link CudaKvPool}.
 *
 * <p>Design note: a step is one host-to-device copy of the step's integers (tokens, positions, the
 * row-to-sequence map, the block tables of the step's sequences, the logit rows), then a fixed
 * sequence of kernels and cuBLASLt products on one stream, then one device-to-host copy of either
 * the logits or the sampled ids; the host waits only for that last copy. Matrix products read each
 * weight once per step for all rows. The two residual projections ({@code wo}, {@code w_down})
 * accumulate straight into the residual stream ({@code beta = 1}), which fuses the residual adds
 * into the GEMM. Activations stay F32; the input of a product is cast to the weight's type (F16 or
 * BF16) by one small kernel, and accumulation is F32.
 *
 * <p>Threading: one thread at a time (the engine loop), as for the CPU transformer.
 */
public final class CudaTransformer implements ForwardPass, AutoCloseable {
  private final CudaDevice device;
  private final CudaKernels k;
  private final Gemm gemm;
  private final DeviceModel model;
  private final LlamaConfig c;
  private final DeviceBuffer cos;
  private final DeviceBuffer sin;
  private Scratch s;
  private final Arena arena = Arena.ofShared();
  private MemorySegment staging = MemorySegment.NULL;
  private DeviceBuffer ints;
  private final DecodeGraphs graphs;
  private final QuantizedProducts quantized;
  private final DeviceBuffer tile;
  private final long tileElements;
  private DecodeFusion fusion;
  private long fusedLayers;
  private long decodeAttentionLayers;
  private long warpAttentionLayers;
  private long headAttentionLayers;
  // rows per attention_tiled tile (0: the model's groups do not fit one; per-row kernels)
  private final int tiledRows;
  private AttentionKernel attention = AttentionKernel.DEFAULT;
  private MgemvSplits splits = MgemvSplits.DEFAULT;
  // host threads for work between steps (forEachOnHost); null: the caller's thread alone
  private ComputePool hostPool;
  private DeviceBuffer partial;
  // mqp4's copies of the one-row INT4 matrices, built when MQ_WIDE_UNITS is first set
  private MqpUnits units;

  /**
   * @param model the version's weights on the device, owned: {@link #close()} releases them
   */
  public CudaTransformer(CudaDevice device, CudaKernels kernels, Gemm gemm, DeviceModel model) {
    this(device, kernels, gemm, model, true);
  }

  /**
   * @param model the version's weights on the device, owned: {@link #close()} releases them
   * @param graphs whether decode steps run as CUDA graphs captured per batch-size bucket
   */
  public CudaTransformer(
      CudaDevice device, CudaKernels kernels, Gemm gemm, DeviceModel model, boolean graphs) {
    this(device, kernels, gemm, model, graphs, DecodeFusion.DEFAULT);
  }

  /**
   * @param model the version's weights on the device, owned: {@link #close()} releases them
   * @param graphs whether decode steps run as CUDA graphs captured per batch-size bucket
   * @param fusion how few-row steps group their launches where the weights allow ({@link
   *     DecodeFusion#OFF}: the separate kernels, the reference the others are tested against)
   */
  public CudaTransformer(
      CudaDevice device,
      CudaKernels kernels,
      Gemm gemm,
      DeviceModel model,
      boolean graphs,
      DecodeFusion fusion) {
    this.fusion = fusion;
    this.graphs = graphs ? new DecodeGraphs(device) : null;
    this.device = device;
    this.k = kernels;
    this.gemm = gemm;
    this.model = model;
    this.c = model.config();
    RopeTable rope = new RopeTable(c.headSize(), c.contextLength(), c.ropeTheta(), c.ropeStyle());
    this.cos = device.upload(rope.cosines());
    this.sin = device.upload(rope.sines());
    this.quantized = new QuantizedProducts(kernels, gemm);
    long largest = largestQuantized(model);
    this.tileElements = QuantizedProducts.tileElements(largest);
    this.tile = largest == 0 ? null : device.allocate(2L * tileElements);
    this.tiledRows = kernels.tiledRows(c.heads(), c.kvHeads(), c.headSize());
  }

  /**
   * Which kernels attention runs on ({@link AttentionKernel#DEFAULT} unless set; the others are for
   * comparing). Steps enqueued (and graphs captured) after the call follow it.
   */
  public void setAttention(AttentionKernel kernel) {
    if (kernel != attention) {
      dropGraphs();
    }
    attention = kernel;
  }

  /**
   * How few-row steps group their launches ({@link DecodeFusion}); steps enqueued (and graphs
   * captured) after the call follow it.
   */
  public void setDecodeFusion(DecodeFusion fusion) {
    if (fusion != this.fusion) {
      dropGraphs();
    }
    this.fusion = Objects.requireNonNull(fusion, "fusion");
  }

  /**
   * How the decode products pick their work split ({@link MgemvSplits#DEFAULT} unless set; the
   * others are for comparing). Steps enqueued (and graphs captured) after the call follow it.
   */
  public void setMgemvSplits(MgemvSplits policy) {
    if (policy != splits) {
      dropGraphs();
    }
    splits = policy;
    quantized.setSplits(policy);
    if (policy.units() && units == null) {
      units = new MqpUnits(device, k, model);
      quantized.setUnits(units);
    }
  }

  /**
   * From how many rows on INT8 per-channel and FP8 E4M3 weights take the W8A8 products ({@link
   * W8a8Products}; off by default, see {@link QuantizedProducts#setW8a8MinRows}); {@code 0} turns
   * them off. Steps enqueued (and graphs captured) after the call follow it.
   *
   * @throws IllegalArgumentException if {@code rows < 0}
   */
  public void setW8a8MinRows(int rows) {
    if (rows < 0) {
      throw new IllegalArgumentException("w8a8MinRows must be >= 0 (0: off), got " + rows);
    }
    int v = rows == 0 ? QuantizedProducts.W8A8_OFF : rows;
    if (v != quantized.w8a8MinRows()) {
      dropGraphs();
    }
    quantized.setW8a8MinRows(v);
  }

  /**
   * Host threads for {@link #forEachOnHost} (the server's compute pool, idle while the GPU
   * computes): the steps the engine samples on the host (a row needing logprobs or penalties sends
   * the whole step there) draw their rows on them instead of one after another. {@code null}, the
   * default: on the caller's thread.
   */
  public void setHostPool(ComputePool pool) {
    this.hostPool = pool;
  }

  /** {@inheritDoc} Here: on the pool {@link #setHostPool} gave, if any. */
  @Override
  public void forEachOnHost(int n, java.util.function.IntConsumer body) {
    ComputePool p = hostPool;
    if (p == null) {
      ForwardPass.super.forEachOnHost(n, body);
    } else {
      p.parallelFor(n, body);
    }
  }

  /** Products enqueued through W8A8 so far (graph replays not counted again). */
  public long w8a8Products() {
    return quantized.w8a8Runs();
  }

  /** Elements of the largest quantized matrix of {@code m}, 0 when none is quantized. */
  private static long largestQuantized(DeviceModel m) {
    long max = 0;
    java.util.List<DeviceTensor> all = new java.util.ArrayList<>();
    all.add(m.output());
    for (DeviceModel.Layer l : m.layers()) {
      all.addAll(java.util.List.of(l.wq(), l.wk(), l.wv(), l.wo(), l.gate(), l.up(), l.down()));
    }
    for (DeviceTensor t : all) {
      if (t.quantized()) {
        max = Math.max(max, (long) t.rows() * t.cols());
      }
    }
    return max;
  }

  @Override
  public LlamaConfig config() {
    return c;
  }

  public DeviceModel model() {
    return model;
  }

  @Override
  public boolean samplesOnDevice() {
    return true;
  }

  @Override
  public float[] forward(Batch batch, KvStore kv) {
    int rows = batch.logitRows().length;
    long logits = run(batch, kv, null);
    float[] out = new float[rows * c.vocabSize()];
    if (rows > 0) {
      device.download(logits, MemorySegment.ofArray(out));
    }
    return out;
  }

  @Override
  public int[] forwardAndSample(Batch batch, KvStore kv, DeviceSampling[] sampling) {
    int rows = batch.logitRows().length;
    if (sampling.length != rows) {
      throw new IllegalArgumentException(
          sampling.length + " sampling rules for " + rows + " logit rows");
    }
    long logits = run(batch, kv, sampling);
    int[] ids = new int[rows];
    if (rows > 0) {
      k.sample(
          logits,
          c.vocabSize(),
          s.temp.ptr(),
          s.topK.ptr(),
          s.topP.ptr(),
          s.minP.ptr(),
          s.seeds.ptr(),
          s.ids.ptr(),
          rows);
      device.download(s.ids.ptr(), MemorySegment.ofArray(ids));
    }
    return ids;
  }

  private void validate(Batch batch) {
    int n = batch.size();
    for (int i = 0; i < n; i++) {
      int t = batch.tokens()[i];
      if (t < 0 || t >= c.vocabSize()) {
        throw new IllegalArgumentException(
            "token id " + t + " outside the vocabulary [0, " + c.vocabSize() + ")");
      }
      int p = batch.positions()[i];
      if (p < 0 || p >= c.contextLength()) {
        throw new IllegalArgumentException(
            "position " + p + " outside the context window [0, " + c.contextLength() + ")");
      }
    }
  }

  /** Queues the whole step and returns the device address of the logits. */
  private long run(Batch batch, KvStore store, DeviceSampling[] sampling) {
    if (!(store instanceof CudaKvPool kv)) {
      throw new IllegalArgumentException(
          "the CUDA forward pass needs the KV cache on the device (a CudaKvPool), got "
              + store.getClass().getSimpleName());
    }
    validate(batch);
    device.makeCurrent();
    int n = batch.size();
    int rows = batch.logitRows().length;
    // Sequences of the step and the block table of each.
    Map<Integer, Integer> seqIndex = new HashMap<>();
    int[] rowSeq = new int[n];
    int maxPos = 0;
    for (int i = 0; i < n; i++) {
      rowSeq[i] = seqIndex.computeIfAbsent(batch.seqs()[i], x -> seqIndex.size());
      maxPos = Math.max(maxPos, batch.positions()[i]);
    }
    int bs = kv.blockSize();
    BlockTables tables = kv.tables();
    for (int i = 0; i < n; i++) {
      int need = batch.positions()[i] / bs + 1;
      if (tables.blocksOf(batch.seqs()[i]) < need) {
        throw new IllegalArgumentException(
            "sequence "
                + batch.seqs()[i]
                + " has no KV block for position "
                + batch.positions()[i]);
      }
    }
    int maxBlocks = (maxPos + bs) / bs;
    // A decode step (one row per sequence, every row's logits) may run as a captured graph: its
    // shape is padded to a bucket, the padding rows write and read only the pool's spare block.
    boolean decode = graphs != null && rows == n && seqIndex.size() == n && isIdentity(batch);
    int padded = decode ? graphs.rowBucket(n) : n;
    if (padded < 0) {
      decode = false;
      padded = n;
    }
    int stride = decode ? graphs.blockBucket(maxBlocks, (c.contextLength() + bs - 1) / bs) : 1;
    stride = Math.max(stride, maxBlocks);
    int stepRows = decode ? padded : rows;
    int seqs = decode ? padded : seqIndex.size();
    int[] table = new int[seqs * stride];
    if (decode) {
      java.util.Arrays.fill(table, kv.spareBlock());
    }
    for (Map.Entry<Integer, Integer> e : seqIndex.entrySet()) {
      int have = Math.min(maxBlocks, tables.blocksOf(e.getKey()));
      for (int b = 0; b < have; b++) {
        table[e.getValue() * stride + b] = tables.blockId(e.getKey(), b);
      }
    }
    // Attention by tiles of query vectors (attention_tiled): a decode step's tiles are its padded
    // rows, one each, and its split depends only on the graph's key (rows, block-table stride), so
    // a replay meets the plan it was captured with.
    int[] tiles = new int[0];
    CudaKernels.AttentionSplit split = null;
    CudaKernels.RowsPlan rowsPlan = null;
    if (tiledRows > 0 && attention == AttentionKernel.TILED) {
      int[] tileSeqs = rowSeq;
      if (decode) {
        tileSeqs = new int[padded];
        for (int i = 0; i < padded; i++) {
          tileSeqs[i] = i;
        }
      }
      tiles = CudaKernels.queryTiles(tileSeqs, padded, decode ? 1 : tiledRows);
      int maxLen = decode ? stride * bs : maxPos + 1;
      split = k.attentionSplit(tiles.length / 2, c.kvHeads(), maxLen);
      long partialFloats = split.partialFloats(tiles.length / 2, c.kvHeads(), c.headSize());
      // one row per tile (rows of distinct sequences, graph or not): attention_rows' grid is the
      // rows themselves; enqueue takes it only where attention_decode would run
      if (tiles.length / 2 == padded
          && (fusion == DecodeFusion.PRODUCTS_AND_WARP_ATTENTION
              || fusion == DecodeFusion.PRODUCTS_AND_HEAD_ATTENTION)
          && CudaKernels.attentionRowsTakes(
              c.heads(), c.kvHeads(), c.headSize(), kv.dtype(), kv.encodingBits())) {
        rowsPlan =
            fusion == DecodeFusion.PRODUCTS_AND_HEAD_ATTENTION
                    && k.rowsPerHeadSuits(
                        padded, c.heads(), c.kvHeads(), kv.dtype(), kv.encodingBits())
                ? k.rowsPlanPerHead(padded, c.heads(), maxLen)
                : k.rowsPlan(padded, c.kvHeads(), maxLen);
        if ((kv.encodingBits() & CudaKernels.KV_KEY_CHANNELS) != 0
            && !CudaKernels.rowsPlanHoldsWholeBlocks(rowsPlan, bs)) {
          rowsPlan = null; // attention_decode, whose split the caller plans in whole blocks
        } else {
          partialFloats =
              Math.max(partialFloats, rowsPlan.partialFloats(padded, c.kvHeads(), c.headSize()));
        }
      }
      ensurePartial(partialFloats);
    }
    // One staging copy: tokens | positions | rowSeq | logitRows | tables | tiles, then the sampling
    // rules (seeds | temperatures | top-k | top-p | min-p: 24 bytes a row).
    long intBytes = 4L * (3L * padded + stepRows + table.length + tiles.length);
    long sampBytes = sampling == null ? 0 : 24L * rows;
    ensureInts(intBytes);
    ensureScratch(padded, Math.max(stepRows, 1));
    MemorySegment st = staging(intBytes + sampBytes + 16);
    st.asSlice(0, intBytes).fill((byte) 0);
    long off = 0;
    long tokensOff = off;
    MemorySegment.copy(batch.tokens(), 0, st, JAVA_INT, off, n);
    off += 4L * padded;
    long posOff = off;
    MemorySegment.copy(batch.positions(), 0, st, JAVA_INT, off, n);
    off += 4L * padded;
    long rowSeqOff = off;
    MemorySegment.copy(rowSeq, 0, st, JAVA_INT, off, n);
    for (int i = n; i < padded; i++) {
      st.set(JAVA_INT, off + 4L * i, i);
    }
    off += 4L * padded;
    long logitRowsOff = off;
    MemorySegment.copy(batch.logitRows(), 0, st, JAVA_INT, off, rows);
    for (int i = rows; i < stepRows; i++) {
      st.set(JAVA_INT, off + 4L * i, i);
    }
    off += 4L * stepRows;
    long tablesOff = off;
    MemorySegment.copy(table, 0, st, JAVA_INT, off, table.length);
    off += 4L * table.length;
    long tilesOff = off;
    MemorySegment.copy(tiles, 0, st, JAVA_INT, off, tiles.length);
    off += 4L * tiles.length;
    long base = ints.ptr();
    device.copyInAsync(base, st.asSlice(0, off));
    if (sampling != null) {
      long so = (off + 7) & ~7L;
      MemorySegment t = st.asSlice(so, 24L * rows);
      for (int r = 0; r < rows; r++) {
        t.set(JAVA_LONG, 8L * r, sampling[r].seed());
        t.set(JAVA_FLOAT, 8L * rows + 4L * r, sampling[r].temperature());
        t.set(JAVA_INT, 12L * rows + 4L * r, sampling[r].topK());
        t.set(JAVA_FLOAT, 16L * rows + 4L * r, sampling[r].topP());
        t.set(JAVA_FLOAT, 20L * rows + 4L * r, sampling[r].minP());
      }
      device.copyInAsync(s.seeds.ptr(), t.asSlice(0, 8L * rows));
      device.copyInAsync(s.temp.ptr(), t.asSlice(8L * rows, 4L * rows));
      device.copyInAsync(s.topK.ptr(), t.asSlice(12L * rows, 4L * rows));
      device.copyInAsync(s.topP.ptr(), t.asSlice(16L * rows, 4L * rows));
      device.copyInAsync(s.minP.ptr(), t.asSlice(20L * rows, 4L * rows));
    }
    Step step =
        new Step(
            padded,
            stepRows,
            stride,
            base + tokensOff,
            base + posOff,
            base + rowSeqOff,
            base + logitRowsOff,
            base + tablesOff,
            base + tilesOff,
            tiles.length / 2,
            split,
            rowsPlan,
            kv,
            seqIndex.size() == n);
    if (decode) {
      graphs.run(DecodeGraphs.Key.of(padded, stride, kv), () -> enqueue(step));
    } else {
      enqueue(step);
    }
    return s.logits.ptr();
  }

  private static boolean isIdentity(Batch batch) {
    int[] r = batch.logitRows();
    for (int i = 0; i < r.length; i++) {
      if (r[i] != i) {
        return false;
      }
    }
    return true;
  }

  /** The device addresses and sizes of one step's integers ({@code n} rows, table stride). */
  private record Step(
      int n,
      int rows,
      int maxBlocks,
      long tokens,
      long positions,
      long rowSeqs,
      long logitRows,
      long blockTables,
      long tiles,
      int tileCount,
      CudaKernels.AttentionSplit split,
      CudaKernels.RowsPlan rowsPlan,
      CudaKvPool kv,
      boolean distinctSequences) {}

  /** Queues the kernels and products of one step on the stream (capturable: no host waits). */
  private void enqueue(Step st) {
    int n = st.n();
    int rows = st.rows();
    int maxBlocks = st.maxBlocks();
    CudaKvPool kv = st.kv();
    long tokens = st.tokens();
    long positions = st.positions();
    long rowSeqs = st.rowSeqs();
    long logitRows = st.logitRows();
    long blockTables = st.blockTables();
    int bs = kv.blockSize();
    int dim = c.dim();
    int kvDim = c.kvDim();
    int hidden = c.hiddenDim();
    int heads = c.heads();
    int hs = c.headSize();
    int ropeStyle = ropeStyle();
    float scale = attentionScale();
    KeyCentering centering =
        kv.centering(cos.ptr(), sin.ptr(), ropeStyle).withParts(s.parts.ptr(), s.rows);
    // RoPE, the KV append and attention in one launch per layer where the step allows it: by a
    // warp per range (attention_rows) where planned, else by a block per range (attention_decode)
    boolean oneRowTiles =
        fusion.attentionInOneLaunch() && st.tileCount() == n && st.distinctSequences();
    boolean warpAttention = oneRowTiles && st.rowsPlan() != null && !centering.centered();
    boolean decodeAttention =
        warpAttention
            || (oneRowTiles
                && CudaKernels.attentionDecodeTakes(kv.encodingBits(), centering, st.split(), bs));

    DeviceTensor emb = model.embedding();
    k.embed(emb.ptr(), emb.dtype(), tokens, s.x.ptr(), dim, n);
    for (int l = 0; l < c.layers(); l++) {
      DeviceModel.Layer w = model.layers().get(l);
      // The norm writes its output in the type of the products it feeds (one kernel, no cast);
      // mixed types within a group fall back to F32 and per-product casts.
      MgOperand mq = fusable(w.wq(), n, dim);
      MgOperand mk = mq == null ? null : MgOperand.of(w.wk(), n, splits.tiledRows());
      MgOperand mv = mq == null ? null : MgOperand.of(w.wv(), n, splits.tiledRows());
      if (mq != null && mq.sameLayout(mk) && mq.sameLayout(mv)) {
        // decode: the three products in one launch (and the norm, when it is folded in)
        fusedLayers++;
        int qkvRows = Math.max(mq.rows(), Math.max(mk.rows(), mv.rows()));
        long normW = normFolded(mq, qkvRows, n) ? w.attnNorm() : 0L;
        if (normW == 0) {
          k.rmsNorm(
              s.x.ptr(), w.attnNorm(), s.xb.ptr(), dim, c.normEps(), 0L, n, CudaKernels.DT_F32);
        }
        fusedProducts(
            mq,
            qkvRows,
            mq.into(s.q.ptr()),
            mk.into(s.k.ptr()),
            mv.into(s.v.ptr()),
            normW != 0 ? s.x.ptr() : s.xb.ptr(),
            dim,
            n,
            normW,
            false);
      } else {
        int qkvType = inputType(n, w.wq(), w.wk(), w.wv());
        long normed = qkvType == CudaKernels.DT_F32 ? s.xb.ptr() : s.typed.ptr();
        k.rmsNorm(s.x.ptr(), w.attnNorm(), normed, dim, c.normEps(), 0L, n, qkvType);
        gemm(w.wq(), normed, qkvType, (long) n * dim, n, s.q.ptr(), false, false);
        gemm(w.wk(), normed, qkvType, (long) n * dim, n, s.k.ptr(), false, true);
        gemm(w.wv(), normed, qkvType, (long) n * dim, n, s.v.ptr(), false, true);
      }
      if (w.qBias() != 0) {
        k.addBias(s.q.ptr(), w.qBias(), dim, n);
      }
      if (w.kBias() != 0) {
        k.addBias(s.k.ptr(), w.kBias(), kvDim, n);
      }
      if (w.vBias() != 0) {
        k.addBias(s.v.ptr(), w.vBias(), kvDim, n);
      }
      int oType = inputType(n, w.wo(), w.wo(), w.wo());
      long att = oType == CudaKernels.DT_F32 ? s.att.ptr() : s.typed.ptr();
      if (warpAttention) {
        decodeAttentionLayers++;
        warpAttentionLayers++;
        if (st.rowsPlan().perHead()) {
          headAttentionLayers++;
        }
        k.attentionRows(
            decodeAttention(kv, att, oType, rowSeqs, positions, blockTables, maxBlocks, l),
            n,
            st.rowsPlan(),
            partial == null ? 0L : partial.ptr());
      } else if (decodeAttention) {
        decodeAttentionLayers++;
        k.attentionDecode(
            decodeAttention(kv, att, oType, rowSeqs, positions, blockTables, maxBlocks, l),
            centering,
            st.tiles(),
            st.tileCount(),
            st.split(),
            partial == null ? 0L : partial.ptr());
      } else {
        // rope on q and k and the KV append: one launch for the few rows of decode steps
        k.ropeAndAppendKv(
            s.q.ptr(),
            s.k.ptr(),
            s.v.ptr(),
            cos.ptr(),
            sin.ptr(),
            heads,
            ropeStyle,
            kv.ptr(),
            kv.scalesPtr(),
            kv.keyChannelsPtr(),
            centering,
            kv.encodingBits(),
            kv.dtype(),
            rowSeqs,
            positions,
            blockTables,
            maxBlocks,
            l,
            c.layers(),
            c.kvHeads(),
            hs,
            bs,
            n,
            // keys per channel in one launch only when no two rows share a block
            fusion != DecodeFusion.OFF
                && n <= CudaKernels.MGEMV_ROWS
                && ((kv.encodingBits() & CudaKernels.KV_KEY_CHANNELS) == 0
                    || st.distinctSequences()));
        if (st.tileCount() > 0) {
          k.attentionTiled(
              s.q.ptr(),
              kv.ptr(),
              kv.scalesPtr(),
              kv.keyChannelsPtr(),
              centering,
              kv.dtype(),
              att,
              rowSeqs,
              positions,
              blockTables,
              maxBlocks,
              l,
              c.layers(),
              heads,
              c.kvHeads(),
              hs,
              bs,
              scale,
              st.tiles(),
              st.tiles() + 4L * st.tileCount(),
              st.tileCount(),
              st.split(),
              partial == null ? 0L : partial.ptr(),
              oType);
        } else {
          k.attention(
              s.q.ptr(),
              kv.ptr(),
              kv.scalesPtr(),
              kv.keyChannelsPtr(),
              centering,
              kv.dtype(),
              att,
              rowSeqs,
              positions,
              blockTables,
              maxBlocks,
              l,
              c.layers(),
              heads,
              c.kvHeads(),
              hs,
              bs,
              scale,
              n,
              oType);
        }
      }
      gemm(w.wo(), att, oType, (long) n * dim, n, s.x.ptr(), true);

      MgOperand mg = fusable(w.gate(), n, dim);
      MgOperand mu = mg == null ? null : MgOperand.of(w.up(), n, splits.tiledRows());
      if (mg != null && mg.sameLayout(mu) && w.up().rows() == hidden) {
        // decode: gate and up and SwiGLU in one launch (and the norm, when it is folded in), F32
        // out for the down product
        long normW = normFolded(mg, mg.rows(), n) ? w.ffnNorm() : 0L;
        if (normW == 0) {
          k.rmsNorm(
              s.x.ptr(), w.ffnNorm(), s.xb.ptr(), dim, c.normEps(), 0L, n, CudaKernels.DT_F32);
        }
        fusedProducts(
            mg,
            mg.rows(),
            mg.into(s.gate.ptr()),
            mu.into(s.up.ptr()),
            null,
            normW != 0 ? s.x.ptr() : s.xb.ptr(),
            dim,
            n,
            normW,
            true);
        gemm(w.down(), s.gate.ptr(), CudaKernels.DT_F32, (long) n * hidden, n, s.x.ptr(), true);
      } else {
        int upType = inputType(n, w.gate(), w.up(), w.up());
        long normed = upType == CudaKernels.DT_F32 ? s.xb.ptr() : s.typed.ptr();
        k.rmsNorm(s.x.ptr(), w.ffnNorm(), normed, dim, c.normEps(), 0L, n, upType);
        if (upType == CudaKernels.DT_F32
            && quantized.swigluCodes(
                w.gate(),
                w.up(),
                w.down(),
                normed,
                n,
                s.gate.ptr(),
                s.up.ptr(),
                s.typed2.ptr(),
                tileElements,
                s.x.ptr(),
                true,
                false)) {
          // W8A8: the down product's codes were made from the accumulators (no h in F32); it
          // must use them, not quantize s.gate
          long made = quantized.w8a8Quantizations();
          gemm(
              w.down(),
              s.gate.ptr(),
              CudaKernels.DT_F32,
              (long) n * hidden,
              n,
              s.x.ptr(),
              true,
              true);
          if (quantized.w8a8Quantizations() != made) {
            throw new IllegalStateException("the down product quantized the gate's accumulators");
          }
        } else {
          gemm(w.gate(), normed, upType, (long) n * dim, n, s.gate.ptr(), false, false);
          gemm(w.up(), normed, upType, (long) n * dim, n, s.up.ptr(), false, true);
          int downType = inputType(n, w.down(), w.down(), w.down());
          long h = downType == CudaKernels.DT_F32 ? s.gate.ptr() : s.typed.ptr();
          k.swiglu(s.gate.ptr(), s.up.ptr(), h, (long) n * hidden, downType);
          gemm(w.down(), h, downType, (long) n * hidden, n, s.x.ptr(), true);
        }
      }
    }
    if (rows > 0) {
      DeviceTensor out = model.output();
      int outType = inputType(rows, out, out, out);
      long normed = outType == CudaKernels.DT_F32 ? s.xb.ptr() : s.typed.ptr();
      k.rmsNorm(s.x.ptr(), model.outputNorm(), normed, dim, c.normEps(), logitRows, rows, outType);
      gemm(out, normed, outType, (long) rows * dim, rows, s.logits.ptr(), false);
    }
  }

  /** Layer {@code layer}'s one-launch decode attention over {@code kv} into {@code att}. */
  private CudaKernels.DecodeAttention decodeAttention(
      CudaKvPool kv,
      long att,
      int outType,
      long rowSeqs,
      long positions,
      long blockTables,
      int maxBlocks,
      int layer) {
    return new CudaKernels.DecodeAttention(
        s.q.ptr(),
        s.k.ptr(),
        s.v.ptr(),
        cos.ptr(),
        sin.ptr(),
        ropeStyle(),
        kv.ptr(),
        kv.scalesPtr(),
        kv.keyChannelsPtr(),
        kv.encodingBits(),
        kv.dtype(),
        att,
        rowSeqs,
        positions,
        blockTables,
        maxBlocks,
        layer,
        c.layers(),
        c.heads(),
        c.kvHeads(),
        c.headSize(),
        kv.blockSize(),
        attentionScale(),
        outType);
  }

  /** The kernels' RoPE style code: 0 adjacent pairs, 1 half split. */
  private int ropeStyle() {
    return c.ropeStyle() == RopeStyle.ADJACENT_PAIRS ? 0 : 1;
  }

  /** The scale of attention scores, {@code 1 / sqrt(headSize)}. */
  private float attentionScale() {
    return (float) (1.0 / Math.sqrt(c.headSize()));
  }

  /**
   * One launch of the decode products that share an input (layout of {@code first}): {@code mq4} /
   * {@code mq8} for tiled weights, else {@code mgemv_fused}.
   */
  private void fusedProducts(
      MgOperand first,
      int maxRows,
      CudaKernels.MgMatrix a,
      CudaKernels.MgMatrix b,
      CudaKernels.MgMatrix cm,
      long x,
      int in,
      int n,
      long normW,
      boolean swiglu) {
    if (n == 1 && splits.units() && units != null && mqp(a, b, cm, x, in, normW, swiglu)) {
      return;
    }
    if (first.tiled()) {
      k.mq(
          first.codes(),
          splits.tiled(maxRows, n, first.codes()),
          a,
          b,
          cm,
          first.groupShift(),
          first.groupsPerRow(),
          x,
          in,
          n,
          false,
          normW,
          c.normEps(),
          swiglu);
    } else {
      k.mgemvFused(
          first.kind(),
          splits.fused(first.kind(), maxRows),
          first.ldw(),
          first.groupSize(),
          first.groupsPerRow(),
          a,
          b,
          cm,
          x,
          in,
          n,
          false,
          normW,
          c.normEps(),
          swiglu);
    }
  }

  /**
   * {@link #fusedProducts} of one row on {@code mqp4} when every matrix has unit copies ({@link
   * MqpUnits}); false, having launched nothing, otherwise.
   */
  private boolean mqp(
      CudaKernels.MgMatrix a,
      CudaKernels.MgMatrix b,
      CudaKernels.MgMatrix cm,
      long x,
      int in,
      long normW,
      boolean swiglu) {
    if (swiglu) {
      long u = units.gateUp(a.w());
      if (u == 0) {
        return false;
      }
      k.mqp(
          new CudaKernels.MqpMatrix(u, a.y(), a.out()),
          null,
          null,
          x,
          in,
          false,
          normW,
          c.normEps(),
          true,
          k.mqpRounds(a.out(), splits.unitsPaired()));
      return true;
    }
    long ua = units.pairs(a.w());
    long ub = b == null ? -1 : units.pairs(b.w());
    long uc = cm == null ? -1 : units.pairs(cm.w());
    if (ua == 0 || ub == 0 || uc == 0) {
      return false;
    }
    k.mqp(
        new CudaKernels.MqpMatrix(ua, a.y(), a.out()),
        b == null ? null : new CudaKernels.MqpMatrix(ub, b.y(), b.out()),
        cm == null ? null : new CudaKernels.MqpMatrix(uc, cm.y(), cm.out()),
        x,
        in,
        false,
        normW,
        c.normEps(),
        false,
        k.mqpRounds(
            (a.out() + (b == null ? 0 : b.out()) + (cm == null ? 0 : cm.out())) / 2,
            splits.unitsPaired()));
    return true;
  }

  /**
   * The decode operand of {@code w} when {@code n} rows of it can run as a fused launch (input
   * {@code in} wide, a multiple of 4 when the norm is folded in); null to run the separate kernels.
   */
  private MgOperand fusable(DeviceTensor w, int n, int in) {
    // the staged products that fold the norm under PRODUCTS take tiled widths (multiples of 32)
    if (fusion == DecodeFusion.OFF || (fusion == DecodeFusion.PRODUCTS_AND_NORM && in % 4 != 0)) {
      return null;
    }
    return MgOperand.of(w, n, splits.tiledRows());
  }

  /**
   * Whether the RMSNorm before a fused launch of {@code n} rows led by {@code first} (largest
   * matrix {@code maxRows} rows) is folded into it: always under {@link
   * DecodeFusion#PRODUCTS_AND_NORM}; under {@link DecodeFusion#PRODUCTS} (and {@link
   * DecodeFusion#PRODUCTS_AND_ATTENTION}) where the launch runs a staged split ({@link
   * CudaKernels.MqVariant#staged}), which reads every input column once per block anyway, so the
   * fold costs a multiply and saves the norm's launch.
   */
  private boolean normFolded(MgOperand first, int maxRows, int n) {
    return fusion == DecodeFusion.PRODUCTS_AND_NORM
        || ((fusion == DecodeFusion.PRODUCTS || fusion.attentionInOneLaunch())
            && first.tiled()
            && splits.tiled(maxRows, n, first.codes()).staged());
  }

  private void ensureInts(long bytes) {
    if (ints == null || ints.bytes() < bytes) {
      if (ints != null) {
        dropGraphs();
        ints.close();
      }
      ints = device.allocate(Math.max(bytes, ints == null ? 4096 : 2 * ints.bytes()));
    }
  }

  /**
   * Up to this many rows, dense F16/BF16 products run on {@code mgemv} (F32 activations) instead of
   * cuBLASLt. Measured on an H200 ({@code CudaBench gemv}, perf/RESULTS.md): for one row mgemv
   * reads a BF16 4096x4096 matrix in 10.8 us (3.1 TB/s) where cuBLASLt takes 12.7 us, and the
   * 14336-wide ones at parity (3.8-4.0 TB/s); from two rows on cuBLASLt is as fast or faster.
   */
  static final int DENSE_MGEMV_ROWS = 1;

  /** Whether {@code n} rows of dense {@code w} take {@code mgemv}. */
  static boolean denseMgemv(DeviceTensor w, int n) {
    return !w.quantized()
        && n <= DENSE_MGEMV_ROWS
        && (w.dtype() == CudaKernels.DT_BF16 || w.dtype() == CudaKernels.DT_F16)
        && w.cols() % 8 == 0;
  }

  /**
   * The type the products of {@code ts} read their input in: the weights' type when they all share
   * it and run on cuBLASLt, else F32 (the weight-only kernels read F32; mixed types cast per
   * product).
   */
  private static int inputType(int n, DeviceTensor a, DeviceTensor b, DeviceTensor c) {
    if (denseMgemv(a, n) && denseMgemv(b, n) && denseMgemv(c, n)) {
      return CudaKernels.DT_F32;
    }
    return a.dtype() == b.dtype() && b.dtype() == c.dtype() ? a.dtype() : CudaKernels.DT_F32;
  }

  /**
   * {@code y (+)= in W^T} for {@code n} rows; {@code in} holds {@code count} elements of type
   * {@code inType}, cast here first when that is not the weight's type (F32 in, mixed types).
   */
  private void gemm(DeviceTensor w, long in, int inType, long count, int n, long y, boolean acc) {
    gemm(w, in, inType, count, n, y, acc, false);
  }

  /**
   * {@link #gemm(DeviceTensor, long, int, long, int, long, boolean)}; {@code sameInput}: {@code in}
   * is the previous product's input, unchanged since (its W8A8 codes may be used again).
   */
  private void gemm(
      DeviceTensor w,
      long in,
      int inType,
      long count,
      int n,
      long y,
      boolean acc,
      boolean sameInput) {
    if (w.quantized()) {
      if (inType != CudaKernels.DT_F32) {
        throw new IllegalStateException("activations of type " + inType + " for quantized weights");
      }
      quantized.multiply(w, in, s.typed2.ptr(), tile.ptr(), tileElements, n, y, acc, sameInput);
      return;
    }
    // the dense paths may cast into typed2, where W8A8 keeps its codes
    quantized.forgetW8a8Codes();
    if (inType == CudaKernels.DT_F32 && denseMgemv(w, n)) {
      CudaKernels.MgKind kind =
          w.dtype() == CudaKernels.DT_BF16 ? CudaKernels.MgKind.BF16 : CudaKernels.MgKind.F16;
      for (int r0 = 0; r0 < n; r0 += CudaKernels.MGEMV_ROWS) {
        int m = Math.min(CudaKernels.MGEMV_ROWS, n - r0);
        k.mgemv(
            kind,
            splits.product(kind, w.rows()),
            w.ptr(),
            2L * w.cols(),
            0,
            0,
            0,
            0,
            in + 4L * r0 * w.cols(),
            y + 4L * r0 * w.rows(),
            w.rows(),
            w.cols(),
            m,
            acc);
      }
      return;
    }
    long x = in;
    if (inType != w.dtype()) {
      if (inType != CudaKernels.DT_F32) {
        throw new IllegalStateException("activations of type " + inType + " for a " + w.dtype());
      }
      k.cast(in, s.typed2.ptr(), w.dtype(), count);
      x = s.typed2.ptr();
    }
    gemm.multiply(w.dtype(), w.ptr(), w.rows(), w.cols(), x, n, y, acc);
  }

  private MemorySegment staging(long bytes) {
    if (staging.byteSize() < bytes) {
      staging = arena.allocate(Math.max(bytes, 2 * staging.byteSize()), 16);
    }
    return staging;
  }

  private void ensureScratch(int n, int rows) {
    if (s != null && s.rows >= n && s.logitRows >= rows) {
      return;
    }
    int cap = Math.max(n, s == null ? 16 : 2 * s.rows);
    int capRows = Math.max(rows, s == null ? 16 : 2 * s.logitRows);
    if (s != null) {
      dropGraphs();
      s.close();
    }
    s = new Scratch(device, c, cap, capRows);
  }

  private void ensurePartial(long floats) {
    if (floats > 0 && (partial == null || partial.bytes() < 4 * floats)) {
      long bytes = Math.max(4 * floats, partial == null ? 1L << 20 : 2 * partial.bytes());
      if (partial != null) {
        dropGraphs();
        partial.close();
      }
      partial = device.allocate(bytes);
    }
  }

  /** Captured graphs hold the addresses of the buffers about to be replaced. */
  private void dropGraphs() {
    if (graphs != null) {
      device.synchronize();
      graphs.clear();
    }
  }

  /**
   * Layers enqueued with the fused decode launches so far (counted when enqueued: a captured graph
   * replays them without counting again).
   */
  public long fusedLayers() {
    return fusedLayers;
  }

  /**
   * Layers enqueued with RoPE, the KV append and attention in one launch ({@link
   * DecodeFusion#PRODUCTS_AND_ATTENTION}); a captured graph counts once, at capture.
   */
  public long decodeAttentionLayers() {
    return decodeAttentionLayers;
  }

  /**
   * Of {@link #decodeAttentionLayers}, those on {@code attention_rows} (a warp per range, {@link
   * DecodeFusion#PRODUCTS_AND_WARP_ATTENTION}); a captured graph counts once, at capture.
   */
  public long warpAttentionLayers() {
    return warpAttentionLayers;
  }

  /**
   * Of {@link #warpAttentionLayers}, those with a block per query head ({@link
   * DecodeFusion#PRODUCTS_AND_HEAD_ATTENTION}); a captured graph counts once, at capture.
   */
  public long headAttentionLayers() {
    return headAttentionLayers;
  }

  /** Decode steps launched as a captured graph so far. */
  public long graphLaunches() {
    return graphs == null ? 0 : graphs.launches();
  }

  /** Why decode steps run without graphs, or null when they use them (diagnostics, tests). */
  public String graphsOffReason() {
    return graphs == null ? "disabled by option" : graphs.failure();
  }

  @Override
  public void close() {
    if (graphs != null) {
      graphs.clear();
    }
    if (s != null) {
      s.close();
    }
    if (ints != null) {
      ints.close();
    }
    if (tile != null) {
      tile.close();
    }
    if (partial != null) {
      partial.close();
    }
    if (units != null) {
      units.close();
    }
    cos.close();
    sin.close();
    model.close();
  }

  /** Device activations for up to {@code rows} token rows and {@code logitRows} logit rows. */
  private static final class Scratch implements AutoCloseable {
    final int rows;
    final int logitRows;
    final DeviceBuffer x;
    final DeviceBuffer xb;
    final DeviceBuffer q;
    final DeviceBuffer k;
    final DeviceBuffer v;
    final DeviceBuffer att;
    final DeviceBuffer gate;
    final DeviceBuffer up;
    final DeviceBuffer typed;
    final DeviceBuffer typed2;
    final DeviceBuffer logits;
    final DeviceBuffer temp;
    final DeviceBuffer topK;
    final DeviceBuffer topP;
    final DeviceBuffer minP;
    final DeviceBuffer seeds;
    final DeviceBuffer ids;

    /** The weighted key search's partial errors ({@link KeyCentering#parts}). */
    final DeviceBuffer parts;

    Scratch(CudaDevice d, LlamaConfig c, int rows, int logitRows) {
      this.rows = rows;
      this.logitRows = logitRows;
      long f = 4L;
      x = d.allocate(f * rows * c.dim());
      xb = d.allocate(f * rows * c.dim());
      q = d.allocate(f * rows * c.dim());
      k = d.allocate(f * rows * c.kvDim());
      v = d.allocate(f * rows * c.kvDim());
      att = d.allocate(f * rows * c.dim());
      gate = d.allocate(f * rows * c.hiddenDim());
      up = d.allocate(f * rows * c.hiddenDim());
      typed = d.allocate(f * rows * Math.max(c.dim(), c.hiddenDim()));
      typed2 = d.allocate(f * rows * Math.max(c.dim(), c.hiddenDim()));
      logits = d.allocate(f * logitRows * c.vocabSize());
      temp = d.allocate(4L * logitRows);
      topK = d.allocate(4L * logitRows);
      topP = d.allocate(4L * logitRows);
      minP = d.allocate(4L * logitRows);
      seeds = d.allocate(8L * logitRows);
      ids = d.allocate(4L * logitRows);
      parts = d.allocate(CudaKernels.weightedPartsBytes(rows, c.kvHeads()));
    }

    @Override
    public void close() {
      for (DeviceBuffer b :
          new DeviceBuffer[] {
            x, xb, q, k, v, att, gate, up, typed, typed2, logits, temp, topK, topP, minP, seeds,
            ids, parts
          }) {
        b.close();
      }
    }
  }
}
