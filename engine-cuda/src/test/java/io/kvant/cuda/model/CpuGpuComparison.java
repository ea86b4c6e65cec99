package io.kvant.cuda.model;

import io.kvant.cuda.CudaBackend;
import io.kvant.engine.forward.Batch;
import io.kvant.engine.forward.Transformer;
import io.kvant.engine.kv.EvictionPolicyKind;
import io.kvant.engine.kv.KvCacheConfig;
import io.kvant.engine.kv.KvCacheManager;
import io.kvant.engine.kv.KvCacheType;
import io.kvant.engine.kv.KvEncoding;
import io.kvant.engine.kv.KvGeometry;
import io.kvant.engine.kv.KvScales;
import io.kvant.engine.kv.KvStoreFactory;
import io.kvant.engine.model.LayerWeights;
import io.kvant.engine.model.LlamaConfig;
import io.kvant.engine.model.ModelWeights;
import io.kvant.engine.tensor.ComputePool;
import io.kvant.engine.tensor.DType;
import io.kvant.engine.tensor.Tensor;
import io.kvant.engine.tensor.Tensors;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Consumer;

/**
 * Runs the same continuous-batching schedule through the CPU transformer and the CUDA backend and
 * compares the logits of every position: sequences of mixed lengths start with prefill chunks of
 * different sizes, then decode together one token per step.
 */
final class CpuGpuComparison {
  /** What the comparison saw. */
  record Result(
      int positions,
      double maxAbsDiff,
      int top1Agree,
      int nearTies,
      int agreeNoTies,
      double cpuPerplexity,
      double gpuPerplexity,
      long graphLaunches,
      long fusedLayers,
      long w8a8Products) {
    double agreementExcludingNearTies() {
      return (double) agreeNoTies / (positions - nearTies);
    }
  }

  /** Reference gap in probability below which two top tokens are a near tie (eval's rule). */
  static final double TIE_GAP = 0.01;

  private CpuGpuComparison() {}

  static Result run(
      CudaBackend backend,
      LlamaConfig c,
      ModelWeights w,
      KvCacheType gpuKv,
      int sequences,
      int length,
      long seed) {
    return run(backend, c, w, KvCacheType.F32, gpuKv, sequences, length, seed);
  }

  /** As above, with the CPU engine's KV storage {@code cpuKvType} instead of F32. */
  static Result run(
      CudaBackend backend,
      LlamaConfig c,
      ModelWeights w,
      KvCacheType cpuKvType,
      KvCacheType gpuKv,
      int sequences,
      int length,
      long seed) {
    return run(backend, c, w, cpuKvType, gpuKv, sequences, length, seed, Options.DEFAULT);
  }

  /**
   * What a comparison varies beyond the KV types. {@code encoding}: how INT8/FP8 KV is coded on
   * both engines (F32 and F16 store floats whatever it says); {@code maxSequences}: at most that
   * many sequences in flight (the next starts when one ends), so decode steps have that many rows
   * and the few-row paths (fused decode) are compared; {@code setup}: applied to the GPU's forward
   * pass before the first step; {@code scales}: the calibrated statistics of an encoding that needs
   * them (the centered ones), given to both engines' stores, else null.
   */
  record Options(
      KvEncoding encoding, int maxSequences, Consumer<CudaTransformer> setup, KvScales scales) {
    /** Per-token scales, every sequence in flight, nothing set on the GPU. */
    static final Options DEFAULT =
        new Options(KvEncoding.PER_TOKEN, Integer.MAX_VALUE, t -> {}, null);

    Options withEncoding(KvEncoding e) {
      return new Options(e, maxSequences, setup, scales);
    }

    Options withMaxSequences(int m) {
      return new Options(encoding, m, setup, scales);
    }

    Options withSetup(Consumer<CudaTransformer> s) {
      return new Options(encoding, maxSequences, s, scales);
    }

    Options withScales(KvScales s) {
      return new Options(encoding, maxSequences, setup, s);
    }
  }

  /** As above, with {@code options}. */
  static Result run(
      CudaBackend backend,
      LlamaConfig c,
      ModelWeights w,
      KvCacheType cpuKvType,
      KvCacheType gpuKv,
      int sequences,
      int length,
      long seed,
      Options options) {
    KvEncoding encoding = options.encoding();
    int maxSequences = options.maxSequences();
    SplittableRandom rnd = new SplittableRandom(seed);
    KvGeometry g = new KvGeometry(c.layers(), c.kvHeads(), c.headSize());
    long budget = (long) sequences * (length + 32) * g.bytesPerToken(KvCacheType.F32) * 2;
    KvCacheManager cpuKv =
        new KvCacheManager(
            g,
            new KvCacheConfig(cpuKvType, 16, budget, EvictionPolicyKind.TINY_LFU, false),
            cpuKvType.elementBytes() != 1
                ? KvStoreFactory.host()
                : options.scales() == null
                    ? KvStoreFactory.host(encoding)
                    : KvStoreFactory.host(encoding, options.scales()));
    KvCacheManager devKv =
        new KvCacheManager(
            g,
            new KvCacheConfig(gpuKv, 16, budget, EvictionPolicyKind.TINY_LFU, false),
            backend.kvStorage(encoding, options.scales()));
    try (ComputePool pool = new ComputePool(2);
        io.kvant.cuda.model.CudaTransformer gpu = backend.load(c, w)) {
      options.setup().accept(gpu);
      Transformer cpu = new Transformer(c, w, pool);
      int[][] tokens = new int[sequences][length];
      int[] prefill = new int[sequences];
      int[] cpuSeq = new int[sequences];
      int[] devSeq = new int[sequences];
      for (int s = 0; s < sequences; s++) {
        for (int t = 0; t < length; t++) {
          tokens[s][t] = rnd.nextInt(c.vocabSize());
        }
        prefill[s] = 1 + rnd.nextInt(Math.min(64, length - 1));
        cpuSeq[s] = cpuKv.open(cpuKv.findCachedPrefix(tokens[s], length, "s" + s), prefill[s]);
        devSeq[s] = devKv.open(devKv.findCachedPrefix(tokens[s], length, "s" + s), prefill[s]);
      }
      int[] done = new int[sequences];
      int positions = 0;
      double maxDiff = 0;
      int agree = 0;
      int ties = 0;
      int agreeNoTies = 0;
      double cpuNll = 0;
      double gpuNll = 0;
      int scored = 0;
      while (true) {
        List<int[]> rows = new ArrayList<>(); // {seq, position}
        int inFlight = 0;
        for (int s = 0; s < sequences && inFlight < maxSequences; s++) {
          if (done[s] >= length) {
            continue;
          }
          inFlight++;
          int chunk = done[s] == 0 ? prefill[s] : (done[s] < length ? 1 : 0);
          for (int i = 0; i < chunk; i++) {
            rows.add(new int[] {s, done[s] + i});
          }
        }
        if (rows.isEmpty()) {
          break;
        }
        int n = rows.size();
        int[] tok = new int[n];
        int[] pos = new int[n];
        int[] cs = new int[n];
        int[] ds = new int[n];
        int[] all = new int[n];
        for (int r = 0; r < n; r++) {
          int s = rows.get(r)[0];
          pos[r] = rows.get(r)[1];
          tok[r] = tokens[s][pos[r]];
          cs[r] = cpuSeq[s];
          ds[r] = devSeq[s];
          all[r] = r;
        }
        for (int s = 0; s < sequences; s++) {
          int upTo = done[s] == 0 ? prefill[s] : Math.min(length, done[s] + 1);
          if (!cpuKv.grow(cpuSeq[s], upTo) || !devKv.grow(devSeq[s], upTo)) {
            throw new IllegalStateException("kv budget too small");
          }
        }
        float[] a = cpu.forward(new Batch(tok, pos, cs, all), cpuKv.store());
        float[] b = gpu.forward(new Batch(tok, pos, ds, all), devKv.store());
        int v = c.vocabSize();
        for (int r = 0; r < n; r++) {
          int o = r * v;
          int ta = argmax(a, o, v);
          int tb = argmax(b, o, v);
          for (int i = 0; i < v; i++) {
            maxDiff = Math.max(maxDiff, Math.abs(a[o + i] - b[o + i]));
          }
          boolean tie = gap(a, o, v) < TIE_GAP;
          positions++;
          agree += ta == tb ? 1 : 0;
          ties += tie ? 1 : 0;
          agreeNoTies += !tie && ta == tb ? 1 : 0;
          int s = rows.get(r)[0];
          int next = pos[r] + 1;
          if (next < length) {
            cpuNll += nll(a, o, v, tokens[s][next]);
            gpuNll += nll(b, o, v, tokens[s][next]);
            scored++;
          }
        }
        for (int[] row : rows) {
          done[row[0]] = Math.max(done[row[0]], row[1] + 1);
        }
      }
      return new Result(
          positions,
          maxDiff,
          agree,
          ties,
          agreeNoTies,
          Math.exp(cpuNll / scored),
          Math.exp(gpuNll / scored),
          gpu.graphLaunches(),
          gpu.fusedLayers(),
          gpu.w8a8Products());
    }
  }

  /** {@code -log softmax(x)[target]}. */
  static double nll(float[] x, int o, int n, int target) {
    double max = Double.NEGATIVE_INFINITY;
    for (int i = 0; i < n; i++) {
      max = Math.max(max, x[o + i]);
    }
    double z = 0;
    for (int i = 0; i < n; i++) {
      z += Math.exp(x[o + i] - max);
    }
    return Math.log(z) - (x[o + target] - max);
  }

  static int argmax(float[] x, int o, int n) {
    int best = 0;
    for (int i = 1; i < n; i++) {
      if (x[o + i] > x[o + best]) {
        best = i;
      }
    }
    return best;
  }

  /** Top-1 minus top-2 softmax probability. */
  static double gap(float[] x, int o, int n) {
    double max = Double.NEGATIVE_INFINITY;
    for (int i = 0; i < n; i++) {
      max = Math.max(max, x[o + i]);
    }
    double z = 0;
    double p1 = 0;
    double p2 = 0;
    for (int i = 0; i < n; i++) {
      double p = Math.exp(x[o + i] - max);
      z += p;
      if (p > p1) {
        p2 = p1;
        p1 = p;
      } else if (p > p2) {
        p2 = p;
      }
    }
    return (p1 - p2) / z;
  }

  /** The same weights with every matrix re-encoded as {@code type} (F32, F16 or BF16). */
  static ModelWeights convert(ModelWeights w, DType type) {
    java.util.IdentityHashMap<Tensor, Tensor> done = new java.util.IdentityHashMap<>();
    java.util.function.UnaryOperator<Tensor> cv =
        t -> done.computeIfAbsent(t, x -> encode(x, type));
    List<LayerWeights> layers = new ArrayList<>();
    for (LayerWeights l : w.layers()) {
      layers.add(
          new LayerWeights(
              l.attnNorm(),
              cv.apply(l.wq()),
              cv.apply(l.wk()),
              cv.apply(l.wv()),
              cv.apply(l.wo()),
              l.qBias(),
              l.kBias(),
              l.vBias(),
              l.ffnNorm(),
              cv.apply(l.wGate()),
              cv.apply(l.wUp()),
              cv.apply(l.wDown())));
    }
    return new ModelWeights(cv.apply(w.embedding()), layers, w.outputNorm(), cv.apply(w.output()));
  }

  static Tensor encode(Tensor t, DType type) {
    int rows = t.rows();
    int cols = t.cols();
    int eb = type == DType.F32 ? 4 : 2;
    MemorySegment data = MemorySegment.ofArray(new byte[rows * cols * eb]);
    float[] row = new float[cols];
    for (int r = 0; r < rows; r++) {
      t.dequantizeRow(r, row, 0);
      for (int i = 0; i < cols; i++) {
        long at = ((long) r * cols + i) * eb;
        switch (type) {
          case F32 -> data.set(ValueLayout.JAVA_FLOAT_UNALIGNED, at, row[i]);
          case F16 -> data.set(ValueLayout.JAVA_SHORT_UNALIGNED, at, Float.floatToFloat16(row[i]));
          case BF16 -> {
            int u = Float.floatToRawIntBits(row[i]);
            u += 0x7fff + ((u >>> 16) & 1);
            data.set(ValueLayout.JAVA_SHORT_UNALIGNED, at, (short) (u >>> 16));
          }
          default -> throw new IllegalArgumentException(type.toString());
        }
      }
    }
    return Tensors.of(type, rows, cols, data);
  }
}
