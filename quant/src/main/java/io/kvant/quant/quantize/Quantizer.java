package io.kvant.quant.quantize;

import io.kvant.engine.forward.ActivationObserver;
import io.kvant.engine.forward.ActivationObserver.Site;
import io.kvant.engine.forward.Batch;
import io.kvant.engine.forward.Transformer;
import io.kvant.engine.kv.ContiguousKvStore;
import io.kvant.engine.model.LayerWeights;
import io.kvant.engine.model.LlamaConfig;
import io.kvant.engine.model.Model;
import io.kvant.engine.model.ModelWeights;
import io.kvant.engine.model.Role;
import io.kvant.engine.model.TensorNames;
import io.kvant.engine.tensor.ComputePool;
import io.kvant.engine.tensor.Int4Tensor;
import io.kvant.engine.tensor.Tensor;
import io.kvant.quant.artifact.Digests;
import io.kvant.quant.artifact.QbomEntry;
import io.kvant.quant.encoding.TensorEncoding;
import io.kvant.quant.encoding.WeightFormat;
import java.lang.foreign.MemorySegment;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;

/**
 * Quantizes a full-precision {@link Model} with a {@link Recipe}, optionally calibrated on token
 * sequences.
 *
 * <p>Steps: (1) when calibration data is given, run it through the full-precision model and collect
 * {@link ActivationStats} at the inputs of every weight matrix; (2) for roles whose method is
 * {@link Method#AWQ} or {@link Method#SMOOTHQUANT}, search per-input-channel scales ({@link Awq},
 * {@link SmoothQuant}) for each group of matrices that share an input (q/k/v, gate/up, down, o) and
 * fold them: columns times {@code s}, the preceding norm divided by {@code s} (q/k/v, gate/up), or
 * the preceding matrix's rows divided by {@code s} (up for down; v for o, only without
 * grouped-query attention and without a v bias); (3) quantize every matrix with its role's spec,
 * weighting MSE clipping by the mean squared activations when known. Roles whose method is {@link
 * Method#GPTQ} are quantized by {@link Gptq} instead, layer by layer: before layer {@code l} is
 * quantized, the calibration data is run through a model whose layers {@code < l} are the already
 * quantized ones (and layers {@code >= l} still full precision) to collect the Hessians {@code 2
 * X^T X} of layer {@code l}'s four matrix inputs, so each layer compensates the errors of the
 * layers before it; within a layer the inputs come from its own full-precision matrices. The
 * lm_head's Hessian is collected last, with every layer quantized, over all positions.
 *
 * <p>The result shares every unchanged full-precision tensor with the source model, so the source
 * must stay open while the result is used. Deterministic for a given input.
 */
public final class Quantizer {
  /** Calibration rows kept per site for the AWQ search. */
  static final int SAMPLE_ROWS = 256;

  private final Clock clock;
  private final String publisher;
  private final int threads;

  /**
   * One matrix at a time.
   *
   * @param clock time stamped into QBOM records
   * @param publisher recorded in QBOM records
   */
  public Quantizer(Clock clock, String publisher) {
    this(clock, publisher, 1);
  }

  /**
   * Quantizes the seven matrices of a layer on up to {@code threads} threads (each matrix's codes,
   * scales and QBOM entry depend only on its own inputs, so the result is the same as with one
   * thread; the heap holds up to {@code threads} float copies of matrices at once instead of one).
   *
   * @param clock time stamped into QBOM records
   * @param publisher recorded in QBOM records
   * @param threads at least 1
   */
  public Quantizer(Clock clock, String publisher, int threads) {
    if (threads < 1) {
      throw new IllegalArgumentException("threads must be >= 1, got " + threads);
    }
    this.clock = clock;
    this.publisher = publisher;
    this.threads = threads;
  }

  /**
   * Threads for quantizing a whole model ({@code --weights} at load, {@code kvant quantize}): the
   * machine's processors, at most one per layer matrix.
   */
  public static int loadThreads() {
    return Math.min(LINEAR.size(), Runtime.getRuntime().availableProcessors());
  }

  /**
   * Quantize-at-load convenience for the server ({@code --weights RECIPE}): the quantized model
   * only, QBOM times from the system clock.
   */
  public static Model quantize(Model model, Recipe recipe, Calibration calibration) {
    return new Quantizer(Clock.systemUTC(), "kvant", loadThreads())
        .run(model, recipe, calibration)
        .model();
  }

  /**
   * Quantize-at-load with the built-in calibration text when the recipe needs activations ({@code
   * --weights} on generate, serve and eval). The returned model owns {@code model}: closing it
   * closes the source, whose unquantized tensors it still shares.
   *
   * @throws IllegalArgumentException if the recipe cannot be applied, or if quantizing ran out of
   *     Java heap (the quantized codes and the float copies of the matrices being quantized live on
   *     the heap): the message says so and how to give the JVM more
   */
  public static Model quantizeAtLoad(Model model, Recipe recipe) {
    Calibration cal =
        recipe.needsActivations()
            ? Calibration.fromText(
                Calibration.builtinCalibrationText(),
                model.tokenizer(),
                Math.min(256, model.config().contextLength()))
            : Calibration.NONE;
    Model q;
    try {
      q = quantize(model, recipe, cal);
    } catch (OutOfMemoryError e) {
      // Thrown by one large allocation (a matrix's float copy or codes); what was allocated
      // before is garbage once this frame unwinds, so the process can report it and go on (a
      // server keeps its current version).
      throw new IllegalArgumentException(
          outOfHeap("quantizing at load", Runtime.getRuntime().maxMemory()), e);
    }
    return new Model(
        model.source(), model.format(), model.config(), q.weights(), model.tokenizer(), model);
  }

  /**
   * What to tell a user when {@code what} (quantizing at load, {@code kvant quantize}, evaluating)
   * ran out of a heap of {@code maxHeapBytes}.
   */
  public static String outOfHeap(String what, long maxHeapBytes) {
    return what
        + " ran out of Java heap (at most "
        + (maxHeapBytes >> 20)
        + " MiB): the quantized weights, and a float copy of each matrix while it is quantized,"
        + " are held on the heap; give the JVM more (KVANT_HEAP=8g with ./kvant, -Xmx otherwise,"
        + " resources.memory.jvmHeapMiB in the Helm chart)";
  }

  /**
   * Quantizes {@code model}.
   *
   * @throws IllegalArgumentException if the recipe uses AWQ and {@code calibration} is empty
   */
  public QuantizedModel run(Model model, Recipe recipe, Calibration calibration) {
    if (recipe.needsActivations() && calibration.isEmpty()) {
      throw new IllegalArgumentException(
          "recipe '"
              + recipe.name()
              + "' uses awq, gptq or smoothquant, which needs calibration data");
    }
    LlamaConfig cfg = model.config();
    ModelWeights src = model.weights();
    ActivationStats stats = calibration.isEmpty() ? null : collect(model, calibration);
    Instant now = clock.instant();
    Map<String, TensorEncoding> encodings = new HashMap<>();
    List<QbomEntry> qbom = new ArrayList<>();
    int dim = cfg.dim();
    int hidden = cfg.hiddenDim();

    List<LayerWeights> layers = new ArrayList<>();
    try (ExecutorService pool = threads > 1 ? newPool(threads) : null) {
      for (int l = 0; l < cfg.layers(); l++) {
        LayerWeights w = src.layers().get(l);
        Map<Role, float[]> f = new HashMap<>();
        Map<Role, Tensor> orig = new HashMap<>();
        for (Role r : List.of(Role.Q, Role.K, Role.V, Role.O, Role.GATE, Role.UP, Role.DOWN)) {
          Tensor t = matrix(w, r);
          orig.put(r, t);
        }
        float[] attnNorm = w.attnNorm().clone();
        float[] ffnNorm = w.ffnNorm().clone();
        float[][] imp = new float[Role.values().length][];
        // An EnumMap: folds are applied in role order (up takes two, gate/up's columns and down's
        // rows), so the float rounding, hence every code, is the same from run to run.
        Map<Role, float[]> colScale = new EnumMap<>(Role.class);
        if (stats != null) {
          imp[Role.Q.ordinal()] = stats.get(l, Site.ATTN_IN).meanSquare();
          imp[Role.O.ordinal()] = stats.get(l, Site.ATTN_OUT).meanSquare();
          imp[Role.GATE.ordinal()] = stats.get(l, Site.FFN_IN).meanSquare();
          imp[Role.DOWN.ordinal()] = stats.get(l, Site.FFN_HIDDEN).meanSquare();
          boolean folded =
              searchScales(l, recipe, stats, orig, f, colScale, cfg, w.vBias() == null);
          if (folded) {
            applyFolds(colScale, f, orig, attnNorm, ffnNorm, dim, hidden, cfg.kvDim());
          }
        }
        Map<Site, Gptq.Hessian> hessians =
            usesGptq(recipe, LINEAR)
                ? layerHessians(model, layers, l, calibration, false).sites()
                : Map.of();
        Map<Role, Tensor> out = new HashMap<>();
        final int layer = l;
        List<Quantized> done =
            eachRole(
                pool,
                r ->
                    quantizeMatrix(
                        layer,
                        r,
                        orig.get(r),
                        f.get(r),
                        recipe,
                        imp,
                        colScale,
                        hessians,
                        calibration));
        for (int i = 0; i < LINEAR.size(); i++) {
          Quantized d = done.get(i);
          if (d.encoding() != null) {
            encodings.put(d.entry().tensor(), d.encoding());
          }
          out.put(LINEAR.get(i), d.tensor());
          qbom.add(d.entry());
        }
        qbom.add(normEntry(TensorNames.attnNorm(l), w.attnNorm()));
        qbom.add(normEntry(TensorNames.ffnNorm(l), w.ffnNorm()));
        layers.add(
            new LayerWeights(
                attnNorm,
                out.get(Role.Q),
                out.get(Role.K),
                out.get(Role.V),
                out.get(Role.O),
                w.qBias(),
                w.kBias(),
                w.vBias(),
                ffnNorm,
                out.get(Role.GATE),
                out.get(Role.UP),
                out.get(Role.DOWN)));
      }
    }
    boolean tied = src.output() == src.embedding();
    QuantSpec embSpec = recipe.spec(Role.EMBEDDINGS);
    QuantSpec headSpec = recipe.spec(Role.LM_HEAD);
    Tensor emb = plain(TensorNames.EMBEDDING, src.embedding(), embSpec, null, encodings);
    qbom.add(
        entry(
            TensorNames.EMBEDDING,
            Role.EMBEDDINGS,
            emb,
            noAwq(embSpec),
            calibration,
            src.embedding()));
    Tensor head;
    if (tied && headSpec.equals(embSpec)) {
      head = emb;
    } else if (isGptq(headSpec)) {
      Tensor t = src.output();
      double[] h =
          layerHessians(model, layers, -1, calibration, true).sites().get(Site.HEAD_IN).matrix();
      WeightQuantizer.Result res =
          Gptq.quantize(
              TensorNames.OUTPUT,
              WeightQuantizer.dequantize(t),
              t.rows(),
              t.cols(),
              headSpec,
              h,
              false);
      encodings.put(TensorNames.OUTPUT, res.encoding());
      head = res.tensor();
      qbom.add(entry(TensorNames.OUTPUT, Role.LM_HEAD, head, headSpec, calibration, t));
    } else {
      float[] headImp = stats == null ? null : stats.get(-1, Site.HEAD_IN).meanSquare();
      head = plain(TensorNames.OUTPUT, src.output(), headSpec, headImp, encodings);
      qbom.add(
          entry(
              TensorNames.OUTPUT, Role.LM_HEAD, head, noAwq(headSpec), calibration, src.output()));
    }
    qbom.add(normEntry(TensorNames.OUTPUT_NORM, src.outputNorm()));
    ModelWeights weights = new ModelWeights(emb, layers, src.outputNorm(), head);
    return new QuantizedModel(model.withWeights(weights), recipe, encodings, qbom, now, publisher);
  }

  /** One quantized layer matrix: its tensor, its encoding (null for GGUF types) and QBOM entry. */
  private record Quantized(Tensor tensor, TensorEncoding encoding, QbomEntry entry) {}

  private Quantized quantizeMatrix(
      int l,
      Role r,
      Tensor t,
      float[] weights,
      Recipe recipe,
      float[][] imp,
      Map<Role, float[]> colScale,
      Map<Site, Gptq.Hessian> hessians,
      Calibration calibration) {
    QuantSpec spec = recipe.spec(r);
    String name = TensorNames.matrix(l, r);
    float[] importance = importanceOf(r, imp);
    float[] s = colScale.get(groupLead(r));
    if (importance != null && s != null) {
      importance = importance.clone();
      for (int c = 0; c < importance.length; c++) {
        importance[c] /= s[c] * s[c];
      }
    }
    Tensor q;
    TensorEncoding enc = null;
    if (spec.format() == WeightFormat.FULL && weights == null) {
      q = t;
    } else {
      float[] wf = weights != null ? weights : WeightQuantizer.dequantize(t);
      WeightQuantizer.Result res;
      if (isGptq(spec)) {
        double[] h = hessians.get(siteOf(r)).matrix();
        if (s != null) {
          scaleHessian(h, s); // the input is x / s after an AWQ fold (h is a fresh copy)
        }
        res = Gptq.quantize(name, wf, t.rows(), t.cols(), spec, h, false);
      } else {
        res =
            WeightQuantizer.quantize(
                name, wf, t.rows(), t.cols(), fallback(spec, t.cols()), importance);
      }
      q = res.tensor();
      enc = res.encoding();
    }
    return new Quantized(q, enc, entry(name, r, q, spec, calibration, t));
  }

  /** Daemon workers: a quantization that fails or is abandoned never keeps the JVM alive. */
  private static ExecutorService newPool(int threads) {
    AtomicInteger n = new AtomicInteger();
    return Executors.newFixedThreadPool(
        threads,
        r -> {
          Thread t = new Thread(r, "kvant-quantize-" + n.incrementAndGet());
          t.setDaemon(true);
          return t;
        });
  }

  /**
   * {@code task} for each of {@link #LINEAR}'s roles, in that order: on {@code pool} when there is
   * one, else one after another.
   */
  private static <T> List<T> eachRole(ExecutorService pool, Function<Role, T> task) {
    List<T> results = new ArrayList<>(LINEAR.size());
    if (pool == null) {
      for (Role r : LINEAR) {
        results.add(task.apply(r));
      }
      return results;
    }
    List<Callable<T>> tasks = new ArrayList<>(LINEAR.size());
    for (Role r : LINEAR) {
      tasks.add(() -> task.apply(r));
    }
    try {
      // invokeAll returns when every task has ended, its futures in the tasks' order
      for (Future<T> f : pool.invokeAll(tasks)) {
        results.add(f.get());
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while quantizing", e);
    } catch (ExecutionException e) {
      if (e.getCause() instanceof RuntimeException re) {
        throw re;
      }
      if (e.getCause() instanceof Error err) {
        throw err;
      }
      throw new IllegalStateException(e.getCause());
    }
    return results;
  }

  /**
   * Embeddings and lm_head have no foldable input scale: AWQ falls back to MSE clipping; embeddings
   * (a lookup, no input activations) do the same for GPTQ; SmoothQuant falls back to the min-max
   * ranges it quantizes smoothed weights with. (lm_head's input is the output norm's, which could
   * take the factors where lm_head is not tied to the embedding; all three real models tie it.)
   */
  private static QuantSpec noAwq(QuantSpec spec) {
    if (spec.method() == Method.SMOOTHQUANT) {
      return spec.withMethod(Method.MINMAX);
    }
    return spec.method() == Method.AWQ || spec.method() == Method.GPTQ
        ? spec.withMethod(Method.MSE)
        : spec;
  }

  private static final List<Role> LINEAR =
      List.of(Role.Q, Role.K, Role.V, Role.O, Role.GATE, Role.UP, Role.DOWN);

  /** Whether {@code spec} is quantized by GPTQ (a grid format with the GPTQ method). */
  private static boolean isGptq(QuantSpec spec) {
    return spec.method() == Method.GPTQ
        && switch (spec.format()) {
          case INT8, INT4, FP8_E4M3, FP8_E5M2 -> true;
          default -> false;
        };
  }

  private static boolean usesGptq(Recipe recipe, List<Role> roles) {
    return roles.stream().anyMatch(r -> isGptq(recipe.spec(r)));
  }

  private static Site siteOf(Role r) {
    return switch (r) {
      case Q, K, V -> Site.ATTN_IN;
      case O -> Site.ATTN_OUT;
      case GATE, UP -> Site.FFN_IN;
      case DOWN -> Site.FFN_HIDDEN;
      default -> throw new IllegalArgumentException(r.toString());
    };
  }

  /** {@code h[i][j] /= s[i] s[j]}: the Hessian of the inputs {@code x / s}. */
  private static void scaleHessian(double[] h, float[] s) {
    int n = s.length;
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < n; j++) {
        h[i * n + j] /= (double) s[i] * s[j];
      }
    }
  }

  /** Collects the input Hessians of one layer's sites (or of lm_head, layer -1). */
  private static final class HessianObserver implements ActivationObserver {
    private final int layer;
    private final Map<Site, Gptq.Hessian> sites = new EnumMap<>(Site.class);

    HessianObserver(int layer) {
      this.layer = layer;
    }

    @Override
    public void observe(int l, Site site, float[] x, int rows, int width) {
      if (l == layer) {
        sites.computeIfAbsent(site, k -> new Gptq.Hessian(width)).add(x, rows);
      }
    }

    Map<Site, Gptq.Hessian> sites() {
      return sites;
    }
  }

  /**
   * Runs the calibration data through the source model with its first {@code quantized.size()}
   * layers replaced by {@code quantized}, collecting the input Hessians of layer {@code layer}
   * ({@code -1}: lm_head; {@code allRows} then computes logits at every position so that every
   * position is observed).
   */
  private static HessianObserver layerHessians(
      Model model, List<LayerWeights> quantized, int layer, Calibration cal, boolean allRows) {
    ModelWeights src = model.weights();
    List<LayerWeights> mixed = new ArrayList<>(quantized);
    mixed.addAll(src.layers().subList(quantized.size(), src.layers().size()));
    HessianObserver obs = new HessianObserver(layer);
    run(
        model.config(),
        new ModelWeights(src.embedding(), mixed, src.outputNorm(), src.output()),
        cal,
        obs,
        allRows);
    return obs;
  }

  /** Q4_0/Q8_0 need widths that are multiples of 32: other tensors stay full precision. */
  private static QuantSpec fallback(QuantSpec spec, int cols) {
    if ((spec.format() == WeightFormat.Q4_0 || spec.format() == WeightFormat.Q8_0)
        && cols % 32 != 0) {
      return QuantSpec.FULL;
    }
    return spec;
  }

  private static Tensor plain(
      String name, Tensor t, QuantSpec spec, float[] imp, Map<String, TensorEncoding> encodings) {
    if (spec.format() == WeightFormat.FULL) {
      return t;
    }
    QuantSpec s = spec.method() == Method.GPTQ ? spec : noAwq(spec);
    WeightQuantizer.Result res =
        WeightQuantizer.quantize(
            name, WeightQuantizer.dequantize(t), t.rows(), t.cols(), fallback(s, t.cols()), imp);
    if (res.encoding() != null) {
      encodings.put(name, res.encoding());
    }
    return res.tensor();
  }

  private static Role groupLead(Role r) {
    return switch (r) {
      case Q, K, V -> Role.Q;
      case GATE, UP -> Role.GATE;
      default -> r;
    };
  }

  private static float[] importanceOf(Role r, float[][] imp) {
    return imp[groupLead(r).ordinal()];
  }

  /**
   * Searches and records in {@code colScale} (keyed by each group's first role) the scales of every
   * group of layer {@code l} whose roles use AWQ or SmoothQuant; returns whether any was found.
   * Every search reads the unfolded weights and activations ({@link #applyFolds} runs after all of
   * them), so the groups do not depend on each other.
   */
  private static boolean searchScales(
      int l,
      Recipe recipe,
      ActivationStats stats,
      Map<Role, Tensor> orig,
      Map<Role, float[]> f,
      Map<Role, float[]> colScale,
      LlamaConfig cfg,
      boolean noVBias) {
    boolean folded = false;
    folded |= scaleGroup(l, GROUP_QKV, Site.ATTN_IN, recipe, stats, orig, f, colScale, cfg.dim());
    folded |=
        scaleGroup(l, GROUP_GATE_UP, Site.FFN_IN, recipe, stats, orig, f, colScale, cfg.dim());
    folded |=
        scaleGroup(
            l,
            List.of(Role.DOWN),
            Site.FFN_HIDDEN,
            recipe,
            stats,
            orig,
            f,
            colScale,
            cfg.hiddenDim());
    // o's input channels map to v's rows one to one only when every query head has its own v head
    // (and no v bias would be scaled wrongly).
    if (cfg.kvHeads() == cfg.heads() && noVBias) {
      folded |=
          scaleGroup(
              l, List.of(Role.O), Site.ATTN_OUT, recipe, stats, orig, f, colScale, cfg.dim());
    }
    return folded;
  }

  private static final List<Role> GROUP_QKV = List.of(Role.Q, Role.K, Role.V);
  private static final List<Role> GROUP_GATE_UP = List.of(Role.GATE, Role.UP);

  /** The scaling method of a group: AWQ or SmoothQuant when a role uses it, else null. */
  private static Method scalingMethod(List<Role> roles, Recipe recipe) {
    for (Role r : roles) {
      QuantSpec spec = recipe.spec(r);
      boolean grid =
          switch (spec.format()) {
            case INT8, INT4, FP8_E4M3, FP8_E5M2 -> true;
            default -> false;
          };
      if (grid && (spec.method() == Method.AWQ || spec.method() == Method.SMOOTHQUANT)) {
        return spec.method(); // Recipe forbids both in one group
      }
    }
    return null;
  }

  private static boolean scaleGroup(
      int layer,
      List<Role> roles,
      Site site,
      Recipe recipe,
      ActivationStats stats,
      Map<Role, Tensor> orig,
      Map<Role, float[]> f,
      Map<Role, float[]> colScale,
      int cols) {
    Method method = scalingMethod(roles, recipe);
    if (method == null) {
      return false;
    }
    ActivationStats.SiteStats st = stats.get(layer, site);
    List<Awq.Linear> linears = groupLinears(layer, roles, recipe, orig, f);
    float[] s =
        method == Method.AWQ
            ? Awq.search(linears, st.meanAbs(), st.samples(), st.sampleRows(), cols)
            : SmoothQuant.search(linears, st.maxAbs(), st.samples(), st.sampleRows(), cols)
                .scales();
    if (s == null) {
      return false;
    }
    colScale.put(roles.get(0), s);
    return true;
  }

  /** The quantized members of a group as floats (cached in {@code f}) with their specs. */
  static List<Awq.Linear> groupLinears(
      int layer, List<Role> roles, Recipe recipe, Map<Role, Tensor> orig, Map<Role, float[]> f) {
    List<Awq.Linear> linears = new ArrayList<>();
    for (Role r : roles) {
      QuantSpec spec = recipe.spec(r);
      if (spec.format() == WeightFormat.FULL) {
        continue;
      }
      Tensor t = orig.get(r);
      float[] w = f.computeIfAbsent(r, k -> WeightQuantizer.dequantize(t));
      linears.add(new Awq.Linear(TensorNames.matrix(layer, r), w, t.rows(), spec));
    }
    return linears;
  }

  /**
   * Multiplies columns by the scales and divides them out of norms / preceding rows: {@code
   * colScale} maps a group's first role (q, gate, down, o) to its factors; {@code f} caches the
   * float weights (filled from {@code orig} where missing), {@code attnNorm} and {@code ffnNorm}
   * are changed in place. In exact arithmetic the model computes the same function afterwards.
   */
  static void applyFolds(
      Map<Role, float[]> colScale,
      Map<Role, float[]> f,
      Map<Role, Tensor> orig,
      float[] attnNorm,
      float[] ffnNorm,
      int dim,
      int hidden,
      int kvDim) {
    for (Map.Entry<Role, float[]> e : colScale.entrySet()) {
      Role lead = e.getKey();
      float[] s = e.getValue();
      List<Role> members =
          switch (lead) {
            case Q -> List.of(Role.Q, Role.K, Role.V);
            case GATE -> List.of(Role.GATE, Role.UP);
            default -> List.of(lead);
          };
      for (Role m : members) {
        Tensor t = orig.get(m);
        float[] w = f.computeIfAbsent(m, k -> WeightQuantizer.dequantize(t));
        scaleColumns(w, t.rows(), t.cols(), s, true);
      }
      switch (lead) {
        case Q -> divide(attnNorm, s);
        case GATE -> divide(ffnNorm, s);
        case DOWN -> {
          Tensor up = orig.get(Role.UP);
          float[] w = f.computeIfAbsent(Role.UP, k -> WeightQuantizer.dequantize(up));
          scaleRows(w, hidden, dim, s);
        }
        case O -> {
          Tensor v = orig.get(Role.V);
          float[] w = f.computeIfAbsent(Role.V, k -> WeightQuantizer.dequantize(v));
          scaleRows(w, kvDim, dim, s);
        }
        default -> throw new AssertionError(lead);
      }
    }
  }

  private static void scaleColumns(float[] w, int rows, int cols, float[] s, boolean multiply) {
    for (int r = 0; r < rows; r++) {
      for (int c = 0; c < cols; c++) {
        w[r * cols + c] = multiply ? w[r * cols + c] * s[c] : w[r * cols + c] / s[c];
      }
    }
  }

  private static void scaleRows(float[] w, int rows, int cols, float[] s) {
    for (int r = 0; r < rows; r++) {
      for (int c = 0; c < cols; c++) {
        w[r * cols + c] /= s[r];
      }
    }
  }

  private static void divide(float[] norm, float[] s) {
    for (int i = 0; i < norm.length; i++) {
      norm[i] /= s[i];
    }
  }

  static Tensor matrix(LayerWeights w, Role r) {
    return switch (r) {
      case Q -> w.wq();
      case K -> w.wk();
      case V -> w.wv();
      case O -> w.wo();
      case GATE -> w.wGate();
      case UP -> w.wUp();
      case DOWN -> w.wDown();
      default -> throw new IllegalArgumentException(r.toString());
    };
  }

  /** Runs the calibration sequences through the full-precision model, observing activations. */
  static ActivationStats collect(Model model, Calibration calibration) {
    return collect(model.config(), model.weights(), calibration);
  }

  /** As above, for weights of {@code cfg}. */
  static ActivationStats collect(LlamaConfig cfg, ModelWeights weights, Calibration calibration) {
    ActivationStats stats = new ActivationStats(SAMPLE_ROWS);
    run(cfg, weights, calibration, stats, false);
    return stats;
  }

  /**
   * Runs every calibration sequence through {@code weights}, reporting to {@code observer}; logits
   * of the last position only, or of every position with {@code allRows}.
   */
  private static void run(
      LlamaConfig cfg,
      ModelWeights weights,
      Calibration calibration,
      ActivationObserver observer,
      boolean allRows) {
    try (ComputePool pool = new ComputePool(1)) {
      Transformer t = new Transformer(cfg, weights, pool, observer);
      int maxLen = calibration.sequences().stream().mapToInt(s -> s.length).max().orElse(1);
      ContiguousKvStore kv =
          new ContiguousKvStore(
              cfg.layers(),
              cfg.kvHeads(),
              cfg.headSize(),
              Math.min(maxLen, cfg.contextLength()),
              1);
      for (int[] seq : calibration.sequences()) {
        int[] ids =
            seq.length > cfg.contextLength()
                ? java.util.Arrays.copyOf(seq, cfg.contextLength())
                : seq;
        int slot = kv.acquire();
        Batch b = Batch.ofSequence(slot, 0, ids);
        if (allRows) {
          int[] rows = java.util.stream.IntStream.range(0, ids.length).toArray();
          b = new Batch(b.tokens(), b.positions(), b.seqs(), rows);
        }
        t.forward(b, kv);
        kv.release(slot);
      }
    }
  }

  private QbomEntry entry(
      String name, Role role, Tensor q, QuantSpec spec, Calibration cal, Tensor source) {
    int group =
        q instanceof Int4Tensor i4
            ? i4.groupSize()
            : q.dtype().blockSize() > 1 ? q.dtype().blockSize() : 0;
    String scheme;
    if (q.dtype() == source.dtype() && q == source) {
      scheme = "none";
    } else {
      String gran =
          switch (q.dtype()) {
            case I4, Q4_0, Q8_0 -> "per_block";
            case F8_E4M3, F8_E5M2 -> spec.perTensor() ? "per_tensor" : "per_channel";
            case I8 -> "per_channel";
            default -> "none";
          };
      boolean sym = !(q instanceof Int4Tensor i4 && i4.asymmetric());
      scheme = gran.equals("none") ? "none" : (sym ? "symmetric/" : "asymmetric/") + gran;
    }
    String method =
        scheme.equals("none")
            ? "none"
            : switch (q.dtype()) {
              case Q4_0, Q8_0 -> "ggml";
              default -> spec.method().jsonName();
            };
    return new QbomEntry(
        name,
        role.jsonName(),
        q.dtype().name(),
        q.dtype().bitsPerElement(),
        group,
        scheme,
        method,
        method.equals("none") || cal.isEmpty() ? "none" : cal.sha256(),
        Digests.sha256(source.data()),
        QbomEntry.Origin.QUANTIZED);
  }

  private QbomEntry normEntry(String name, float[] source) {
    MemorySegment seg = MemorySegment.ofArray(source.clone());
    return new QbomEntry(
        name,
        Role.NORMS.jsonName(),
        "F32",
        32,
        0,
        "none",
        "none",
        "none",
        Digests.sha256(seg),
        QbomEntry.Origin.QUANTIZED);
  }
}
