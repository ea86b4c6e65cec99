package io.kvant.engine.forward;

import io.kvant.engine.kv.KvStore;
import io.kvant.engine.model.LayerWeights;
import io.kvant.engine.model.LlamaConfig;
import io.kvant.engine.model.ModelWeights;
import io.kvant.engine.tensor.ComputePool;
import io.kvant.engine.tensor.packed.QuantizedInput;

/**
 * The batched forward pass of a Llama-family decoder.
 *
 * <p>Design note: one call processes a flattened {@link Batch} of tokens from any number of
 * sequences. Every weight matrix is applied to all rows in one {@link ComputePool#matmul} call, so
 * it is streamed from memory once per step however many sequences are batched: decode is
 * memory-bound, and this is where batching pays. Attention is the only per-sequence part; it runs
 * per (row, head) in parallel and reads keys and values through the {@link KvStore}, which owns
 * their layout and precision. Rows are written to the store before attention, so a prefill chunk
 * attends causally to itself.
 *
 * <p>Kernels: {@link MatmulKernels#FLOAT} (the default) or {@link MatmulKernels#INTEGER}, where the
 * weights of the blocks that have an integer kernel are repacked at construction and each matmul
 * input is quantized to int8 once and shared by the matrices that read it (q/k/v, gate/up); the
 * output head's largest logits are computed again in float ({@link HeadRefinement}), since its
 * result is the token choice.
 *
 * <p>Threading: a {@code Transformer} is driven by one thread at a time (the engine loop); it
 * parallelises internally on its {@link ComputePool}. Scratch buffers are reused across calls.
 */
public final class Transformer implements ForwardPass {
  private final LlamaConfig config;
  private final ModelWeights weights;
  private final ComputePool pool;
  private final RopeTable rope;
  // Multiply-adds one SwiGLU element is counted as, against ComputePool.MIN_PARALLEL_WORK.
  private static final int EXP_COST = 8;

  /**
   * The per-row stages between the matmuls (residual add, norm, SwiGLU, activation quantization)
   * are split across the pool from this many rows and {@link #PARALLEL_MIN_ELEMENTS} elements;
   * below either they run on the calling thread as before. One row of SmolLM2 (576 wide) is about a
   * microsecond of such work, what a hand-off to a spinning worker costs.
   */
  static final int PARALLEL_MIN_ROWS = 4;

  /**
   * Elements (rows times width) from which a per-row stage is split. Measured through the server on
   * the bundled model (perf/RESULTS.md, issue 18 session 12): with its 16 rows of 256 split, the
   * 16-stream throughput fell; SmolLM2's 16 rows of 576 gained.
   */
  static final int PARALLEL_MIN_ELEMENTS = 8192;

  private final ThreadLocal<float[]> scoreScratch;
  private final ActivationObserver observer;
  private final MatmulKernels kernels;
  private final LayerLinears[] linears;
  private final Linear head;
  private final QuantizedInput xq = new QuantizedInput();
  private Scratch scratch = new Scratch(0, null);

  public Transformer(LlamaConfig config, ModelWeights weights, ComputePool pool) {
    this(config, weights, pool, null);
  }

  /**
   * A transformer that reports the inputs of its weight matrices to {@code observer} (for
   * calibration; {@code null} for none).
   */
  public Transformer(
      LlamaConfig config, ModelWeights weights, ComputePool pool, ActivationObserver observer) {
    this(config, weights, pool, observer, MatmulKernels.FLOAT);
  }

  /**
   * A transformer running {@code kernels}; with {@link MatmulKernels#INTEGER} the quantized weights
   * are repacked here (in parallel on {@code pool}), which takes a copy of them.
   */
  public Transformer(
      LlamaConfig config,
      ModelWeights weights,
      ComputePool pool,
      ActivationObserver observer,
      MatmulKernels kernels) {
    this(config, weights, pool, observer, kernels, new WeightPacks());
  }

  /** As above, taking packed weights from (and adding them to) {@code packs}. */
  Transformer(
      LlamaConfig config,
      ModelWeights weights,
      ComputePool pool,
      ActivationObserver observer,
      MatmulKernels kernels,
      WeightPacks packs) {
    this.kernels = java.util.Objects.requireNonNull(kernels, "kernels");
    this.linears = new LayerLinears[weights.layers().size()];
    for (int l = 0; l < linears.length; l++) {
      LayerWeights w = weights.layers().get(l);
      linears[l] =
          new LayerLinears(
              Linear.of(w.wq(), kernels, packs, pool),
              Linear.of(w.wk(), kernels, packs, pool),
              Linear.of(w.wv(), kernels, packs, pool),
              Linear.of(w.wo(), kernels, packs, pool),
              Linear.of(w.wGate(), kernels, packs, pool),
              Linear.of(w.wUp(), kernels, packs, pool),
              Linear.of(w.wDown(), kernels, packs, pool));
    }
    // The head's output is the token choice: int8 activations alone there doubled the integer
    // path's KL against the float path on stories260K, so its largest logits are recomputed in
    // float (HeadRefinement, docs/DECISIONS.md).
    this.head = Linear.head(weights.output(), kernels, packs, pool);
    this.observer = observer;
    this.config = config;
    this.weights = weights;
    this.pool = pool;
    this.rope =
        new RopeTable(
            config.headSize(), config.contextLength(), config.ropeTheta(), config.ropeStyle());
    this.scoreScratch = ThreadLocal.withInitial(() -> new float[config.contextLength()]);
  }

  @Override
  public LlamaConfig config() {
    return config;
  }

  /** {@inheritDoc} Here: on the compute pool ({@link ComputePool#parallelFor}). */
  @Override
  public void forEachOnHost(int n, java.util.function.IntConsumer body) {
    pool.parallelFor(n, body);
  }

  public ModelWeights weights() {
    return weights;
  }

  /** The matmul kernels this transformer runs. */
  public MatmulKernels kernels() {
    return kernels;
  }

  /**
   * Runs one forward step and returns the logits of {@code batch.logitRows()}, row-major {@code
   * [logitRows.length][vocabSize]}.
   *
   * @throws IllegalArgumentException if a token id is outside the vocabulary or a position is
   *     outside the context window
   */
  @Override
  public float[] forward(Batch batch, KvStore kv) {
    int n = batch.size();
    for (int i = 0; i < n; i++) {
      int t = batch.tokens()[i];
      if (t < 0 || t >= config.vocabSize()) {
        throw new IllegalArgumentException(
            "token id " + t + " outside the vocabulary [0, " + config.vocabSize() + ")");
      }
      int p = batch.positions()[i];
      if (p < 0 || p >= config.contextLength()) {
        throw new IllegalArgumentException(
            "position " + p + " outside the context window [0, " + config.contextLength() + ")");
      }
    }
    Scratch s = scratchFor(n);
    int dim = config.dim();
    for (int i = 0; i < n; i++) {
      weights.embedding().dequantizeRow(batch.tokens()[i], s.x, i * dim);
    }
    for (int l = 0; l < config.layers(); l++) {
      // Each layer but the first adds the previous one's last residual (its down projection, left
      // in s.o) in its first stage, so that add costs no pass of its own.
      layer(l, weights.layers().get(l), linears[l], batch, kv, s, n, l > 0);
    }
    if (config.layers() > 0) {
      add(s.x, s.o, n * dim);
    }
    int[] rows = batch.logitRows();
    float[] last = new float[rows.length * dim];
    perRow(
        rows.length,
        dim,
        (start, end) -> {
          for (int j = start; j < end; j++) {
            Norms.rmsNorm(
                s.x, rows[j] * dim, weights.outputNorm(), last, j * dim, dim, config.normEps());
          }
        });
    float[] logits = new float[rows.length * config.vocabSize()];
    if (observer != null && rows.length > 0) {
      observer.observe(-1, ActivationObserver.Site.HEAD_IN, last, rows.length, dim);
    }
    if (rows.length > 0) {
      head.apply(pool, last, xq, rows.length, logits);
    }
    return logits;
  }

  /**
   * One block. {@code pendingResidual}: {@code s.o} holds the previous block's down projection, not
   * yet added to {@code s.x}.
   */
  private void layer(
      int l,
      LayerWeights w,
      LayerLinears lin,
      Batch batch,
      KvStore kv,
      Scratch s,
      int n,
      boolean pendingResidual) {
    int dim = config.dim();
    int kvDim = config.kvDim();
    int hidden = config.hiddenDim();
    normStage(
        s, pendingResidual, w.attnNorm(), n, lin.q.integer() || lin.k.integer() || lin.v.integer());
    if (observer != null) {
      observer.observe(l, ActivationObserver.Site.ATTN_IN, s.xb, n, dim);
    }
    Linear.applyAll(pool, lin.qkv, s.xb, xq, n, s.qkv);
    addBias(s.q, w.qBias(), n, dim);
    addBias(s.k, w.kBias(), n, kvDim);
    addBias(s.v, w.vBias(), n, kvDim);
    for (int i = 0; i < n; i++) {
      int pos = batch.positions()[i];
      rope.rotate(s.q, i * dim, config.heads(), pos);
      rope.rotate(s.k, i * kvDim, config.kvHeads(), pos);
      kv.write(batch.seqs()[i], l, pos, s.k, i * kvDim, s.v, i * kvDim);
    }
    attention(l, batch, kv, s, n, lin.o.integer());
    if (observer != null) {
      observer.observe(l, ActivationObserver.Site.ATTN_OUT, s.att, n, dim);
    }
    lin.o.apply(pool, s.att, xq, n, s.o);

    normStage(s, true, w.ffnNorm(), n, lin.gate.integer() || lin.up.integer());
    if (observer != null) {
      observer.observe(l, ActivationObserver.Site.FFN_IN, s.xb, n, dim);
    }
    Linear.applyAll(pool, lin.gateUp, s.xb, xq, n, s.gateUp);
    swiGluStage(s, n, lin.down.integer());
    if (observer != null) {
      observer.observe(l, ActivationObserver.Site.FFN_HIDDEN, s.gate, n, hidden);
    }
    lin.down.apply(pool, s.gate, xq, n, s.o);
    // The residual add of s.o is left to the next block's first stage (or the end of forward).
  }

  /**
   * Per row: {@code x += o} when {@code addResidual}, then {@code xb = rmsNorm(x) * weight}, then
   * {@code xb} quantized into {@code xq} when {@code quantize}. One pass over each row on whichever
   * thread holds it: each step is per row or elementwise, so the split changes no result.
   */
  private void normStage(Scratch s, boolean addResidual, float[] weight, int n, boolean quantize) {
    int dim = config.dim();
    float eps = config.normEps();
    int blocksPerRow = dim / QuantizedInput.BLOCK;
    if (quantize) {
      xq.begin(n, dim);
    }
    perRow(
        n,
        dim,
        (start, end) -> {
          for (int i = start; i < end; i++) {
            int o = i * dim;
            if (addResidual) {
              add(s.x, s.o, o, dim);
            }
            Norms.rmsNorm(s.x, o, weight, s.xb, o, dim, eps);
            if (quantize) {
              xq.quantizeBlocks(s.xb, i * blocksPerRow, (i + 1) * blocksPerRow);
            }
          }
        });
  }

  /**
   * {@code gate = silu(gate) * up} ({@link SwiGlu}), then {@code gate} quantized into {@code xq}
   * when {@code quantize}: per row across the pool when {@link #perRow} would split; otherwise as
   * before (elements split across the pool when there are enough, quantization on the caller).
   */
  private void swiGluStage(Scratch s, int n, boolean quantize) {
    int hidden = config.hiddenDim();
    if (!splitRows(n, hidden)) {
      swiGlu(s.gate, s.up, n * hidden);
      if (quantize) {
        xq.quantize(s.gate, n, hidden);
      }
      return;
    }
    int blocksPerRow = hidden / QuantizedInput.BLOCK;
    if (quantize) {
      xq.begin(n, hidden);
    }
    pool.parallelRanges(
        n,
        1,
        (start, end) -> {
          SwiGlu.apply(s.gate, s.up, start * hidden, end * hidden);
          if (quantize) {
            xq.quantizeBlocks(s.gate, start * blocksPerRow, end * blocksPerRow);
          }
        });
  }

  /**
   * {@code body} over rows {@code [0, n)} of {@code width} elements: split across the pool from
   * {@link #PARALLEL_MIN_ROWS} rows and {@link #PARALLEL_MIN_ELEMENTS} elements.
   */
  private void perRow(int n, int width, ComputePool.RangeBody body) {
    if (!splitRows(n, width)) {
      if (n > 0) {
        body.run(0, n);
      }
    } else {
      pool.parallelRanges(n, 1, body);
    }
  }

  private static boolean splitRows(int n, int width) {
    return n >= PARALLEL_MIN_ROWS && (long) n * width >= PARALLEL_MIN_ELEMENTS;
  }

  /**
   * Attention of every (row, head) into {@code s.att}; with {@code quantize}, {@code s.att} is also
   * quantized into {@code xq}: by each (row, head) task for its own blocks when a head covers whole
   * blocks (so no serial pass or extra hand-off after attention), else afterwards per row.
   */
  private void attention(int l, Batch batch, KvStore kv, Scratch s, int n, boolean quantize) {
    int heads = config.heads();
    int headSize = config.headSize();
    int group = config.groupSize();
    int dim = config.dim();
    float scale = (float) (1.0 / Math.sqrt(headSize));
    long work = 0;
    for (int i = 0; i < n; i++) {
      work += (long) (batch.positions()[i] + 1) * dim * 2;
    }
    boolean quantizeHeads = quantize && headSize % QuantizedInput.BLOCK == 0;
    if (quantize) {
      xq.begin(n, dim);
    }
    // One scratch lookup per range of (row, head) tasks, not per task: the ThreadLocal lookup per
    // task showed as 7% of the engine thread's samples under 16 streams.
    ComputePool.RangeBody body =
        (start, end) -> {
          float[] scores = scoreScratch.get();
          float[] lanes = new float[Softmax.lanes()];
          for (int task = start; task < end; task++) {
            int i = task / heads;
            int h = task % heads;
            int len = batch.positions()[i] + 1;
            int seq = batch.seqs()[i];
            int qOff = i * dim + h * headSize;
            kv.keyScores(seq, l, h / group, s.q, qOff, len, scores);
            Softmax.inPlace(scores, 0, len, scale, lanes);
            java.util.Arrays.fill(s.att, qOff, qOff + headSize, 0f);
            kv.addWeightedValues(seq, l, h / group, scores, len, s.att, qOff);
            if (quantizeHeads) {
              int first = qOff / QuantizedInput.BLOCK;
              xq.quantizeBlocks(s.att, first, first + headSize / QuantizedInput.BLOCK);
            }
          }
        };
    if (work < ComputePool.MIN_PARALLEL_WORK) {
      body.run(0, n * heads);
    } else {
      pool.parallelRanges(n * heads, 1, work, body);
    }
    if (quantize && !quantizeHeads) {
      int blocksPerRow = dim / QuantizedInput.BLOCK;
      perRow(
          n,
          dim,
          (start, end) -> xq.quantizeBlocks(s.att, start * blocksPerRow, end * blocksPerRow));
    }
  }

  /**
   * {@code gate[i] = silu(gate[i]) * up[i]} for {@code i < total} ({@link SwiGlu}), split across
   * the pool when there are enough elements (a serial stretch of every step on the engine thread
   * when it was a scalar {@code exp} per element). Elementwise, so the split changes nothing.
   */
  private void swiGlu(float[] gate, float[] up, int total) {
    ComputePool.RangeBody body = (start, end) -> SwiGlu.apply(gate, up, start, end);
    // An element costs several multiply-adds (the exponential's polynomial, a division);
    // MIN_PARALLEL_WORK is counted in those.
    if ((long) total * EXP_COST < ComputePool.MIN_PARALLEL_WORK) {
      body.run(0, total);
    } else {
      pool.parallelRanges(total, ComputePool.ROW_GRAIN, (long) total * EXP_COST, body);
    }
  }

  private static void addBias(float[] x, float[] bias, int rows, int width) {
    if (bias == null) {
      return;
    }
    for (int r = 0; r < rows; r++) {
      int o = r * width;
      for (int i = 0; i < width; i++) {
        x[o + i] += bias[i];
      }
    }
  }

  private static void add(float[] acc, float[] delta, int count) {
    add(acc, delta, 0, count);
  }

  private static void add(float[] acc, float[] delta, int from, int count) {
    for (int i = from; i < from + count; i++) {
      acc[i] += delta[i];
    }
  }

  private Scratch scratchFor(int n) {
    if (scratch.capacity < n) {
      scratch = new Scratch(Math.max(n, scratch.capacity * 2), config);
    }
    return scratch;
  }

  /** The seven matrices of one block as the forward pass applies them. */
  private record LayerLinears(
      Linear q,
      Linear k,
      Linear v,
      Linear o,
      Linear gate,
      Linear up,
      Linear down,
      Linear[] qkv,
      Linear[] gateUp) {
    LayerLinears(Linear q, Linear k, Linear v, Linear o, Linear gate, Linear up, Linear down) {
      // Matrices that read the same input, applied as one parallel call.
      this(q, k, v, o, gate, up, down, new Linear[] {q, k, v}, new Linear[] {gate, up});
    }
  }

  /** Activation buffers for up to {@code capacity} rows. */
  private static final class Scratch {
    final int capacity;
    final float[] x;
    final float[] xb;
    final float[] q;
    final float[] k;
    final float[] v;
    final float[] att;
    final float[] o;
    final float[] gate;
    final float[] up;
    final float[][] qkv;
    final float[][] gateUp;

    Scratch(int capacity, LlamaConfig c) {
      this.capacity = capacity;
      int dim = c == null ? 0 : c.dim();
      int kvDim = c == null ? 0 : c.kvDim();
      int hidden = c == null ? 0 : c.hiddenDim();
      x = new float[capacity * dim];
      xb = new float[capacity * dim];
      q = new float[capacity * dim];
      k = new float[capacity * kvDim];
      v = new float[capacity * kvDim];
      att = new float[capacity * dim];
      o = new float[capacity * dim];
      gate = new float[capacity * hidden];
      up = new float[capacity * hidden];
      qkv = new float[][] {q, k, v};
      gateUp = new float[][] {gate, up};
    }
  }
}
