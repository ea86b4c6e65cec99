package io.kvant.quant.quantize;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kvant.engine.forward.ActivationObserver.Site;
import io.kvant.engine.forward.Batch;
import io.kvant.engine.forward.Transformer;
import io.kvant.engine.kv.ContiguousKvStore;
import io.kvant.engine.model.LayerWeights;
import io.kvant.engine.model.LlamaConfig;
import io.kvant.engine.model.Model;
import io.kvant.engine.model.ModelWeights;
import io.kvant.engine.model.Role;
import io.kvant.engine.tensor.ComputePool;
import io.kvant.engine.tensor.DType;
import io.kvant.engine.tensor.Fp8Codes;
import io.kvant.engine.tensor.Tensor;
import io.kvant.engine.testing.SharedModels;
import io.kvant.quant.artifact.ModelOpener;
import io.kvant.quant.artifact.QbomEntry;
import io.kvant.quant.encoding.WeightFormat;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * SmoothQuant ({@link SmoothQuant}, {@link Method#SMOOTHQUANT}): the per-token activation quantizer
 * against a scalar reference of the GPU kernel, the folds on a real model, the search, the recipe.
 */
class SmoothQuantTest {
  private static final Instant T0 = Instant.parse("2025-01-02T03:04:05Z");

  /** The three real models of the project's evaluations (perf/RESULTS.md). */
  static Path model(String name) {
    return switch (name) {
      case "stories260K" -> SharedModels.require("stories260K/stories260K.gguf");
      case "tinystories-656k" -> SharedModels.require("tinystories-656k/config.json").getParent();
      case "kvant-kjv-7m" -> bundled();
      default -> throw new IllegalArgumentException(name);
    };
  }

  private static Path bundled() {
    for (Path d = Path.of("").toAbsolutePath(); d != null; d = d.getParent()) {
      Path p = d.resolve("models/kvant-kjv-7m.gguf");
      if (Files.isRegularFile(p)) {
        return p;
      }
    }
    throw new IllegalStateException("models/kvant-kjv-7m.gguf not found above the working dir");
  }

  private static Calibration calibration(Model m) {
    return Calibration.fromText(
        Calibration.builtinCalibrationText(),
        m.tokenizer(),
        Math.min(256, m.config().contextLength()));
  }

  // ---- the per-token activation quantizer --------------------------------------------------

  /**
   * The GPU's {@code w8a8_quantize} written out as the kernel does it (amax, {@code inv = M /
   * amax}, INT8 {@code floor(v + 0.5)} clamped, E4M3 by the CPU encoder), returning codes and row
   * scales; the fake quantizer must give {@code code * scale} exactly.
   */
  private static float[] kernelReference(float[] x, int n, int in, WeightFormat f) {
    boolean int8 = f == WeightFormat.INT8;
    float maxCode = int8 ? 127f : 448f;
    float[] out = new float[n * in];
    for (int r = 0; r < n; r++) {
      float amax = 0f;
      for (int c = 0; c < in; c++) {
        amax = Math.max(amax, Math.abs(x[r * in + c]));
      }
      float inv = amax == 0f ? 0f : maxCode / amax;
      float rowScale = amax == 0f ? 0f : amax / maxCode;
      for (int c = 0; c < in; c++) {
        float v = x[r * in + c] * inv;
        float value;
        if (int8) {
          int q = (int) Math.floor(v + 0.5f);
          value = Math.max(-127, Math.min(127, q));
        } else {
          int code = Fp8Codes.encode(DType.F8_E4M3, v) & 0xFF;
          value = Fp8Codes.decode(DType.F8_E4M3, code);
        }
        out[r * in + c] = value * rowScale;
      }
    }
    return out;
  }

  @ParameterizedTest
  @ValueSource(strings = {"INT8", "FP8_E4M3"})
  void tokenQuantizerMatchesTheKernelsScalarReference(String format) {
    WeightFormat f = WeightFormat.valueOf(format);
    SplittableRandom rnd = new SplittableRandom(7);
    int n = 9;
    int in = 67;
    float[] x = new float[n * in];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) (rnd.nextGaussian() * (i % 13 == 0 ? 40 : 1));
    }
    java.util.Arrays.fill(x, 3 * in, 4 * in, 0f); // an all-zero row: scale 0, codes 0
    float[] want = kernelReference(x, n, in, f);
    float[] got = x.clone();
    TokenQuantizer.fakeQuantize(got, n, in, f);
    assertThat(got).containsExactly(want);
    assertThat(IntStream.range(3 * in, 4 * in).mapToDouble(i -> got[i]).max()).hasValue(0);
  }

  @Test
  void int8RoundsHalfUpAndKeepsTheRowMaximum() {
    // amax 127: inv = 1, scale = 1, so the values are the codes.
    float[] x = {127f, 63.5f, -63.5f, 0.5f, -0.5f, -127f, 1.49f};
    TokenQuantizer.fakeQuantize(x, 1, x.length, WeightFormat.INT8);
    assertThat(x).containsExactly(127f, 64f, -63f, 1f, 0f, -127f, 1f);
    assertThatThrownBy(() -> TokenQuantizer.fakeQuantize(x, 1, 1, WeightFormat.INT4))
        .hasMessageContaining("int8 or fp8_e4m3");
  }

  // ---- the search on synthetic layers ------------------------------------------------------

  private static Awq.Linear linear(float[] w, int rows) {
    return new Awq.Linear("w", w, rows, QuantSpec.int8(Method.SMOOTHQUANT));
  }

  /**
   * Activations of magnitude 1 in every channel are exact under per-token INT8 (amax 1, codes
   * +-127) and the weights are INT8 grid values: every smoothing only adds activation error, so the
   * search keeps none ({@code a = 1} gives {@code s = 1} exactly, a tie that no smoothing wins).
   */
  @Test
  void theSearchKeepsNoSmoothingWhenItDoesNotHelp() {
    SplittableRandom rnd = new SplittableRandom(3);
    int n = 32;
    int cols = 48;
    int rows = 24;
    float[] x = new float[n * cols];
    for (int i = 0; i < x.length; i++) {
      x[i] = rnd.nextBoolean() ? 1f : -1f;
    }
    float[] w = new float[rows * cols];
    for (int r = 0; r < rows; r++) {
      float scale = (r + 1) / 127f;
      for (int c = 0; c < cols; c++) {
        w[r * cols + c] = (c == r % cols ? 127 : rnd.nextInt(-126, 127)) * scale;
      }
    }
    float[] actMax = new float[cols];
    java.util.Arrays.fill(actMax, 1f);
    SmoothQuant.Choice c = SmoothQuant.search(List.of(linear(w, rows)), actMax, x, n, cols);
    System.out.printf(
        "no-help case: plain loss %.3g, chosen %.3g, alpha %s%n",
        c.plainLoss(), c.loss(), c.alpha());
    assertThat(c.smooths()).isFalse();
    assertThat(c.loss()).isEqualTo(c.plainLoss());
    assertThat(c.alpha()).isNaN();
  }

  /** One activation channel 100x the others: smoothing wins, by a wide margin. */
  @Test
  void theSearchSmoothsAnOutlierChannel() {
    SplittableRandom rnd = new SplittableRandom(5);
    int n = 64;
    int cols = 64;
    int rows = 32;
    float[] x = new float[n * cols];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) rnd.nextGaussian() * (i % cols == 5 ? 100 : 1);
    }
    float[] w = new float[rows * cols];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) rnd.nextGaussian() * 0.1f;
    }
    float[] actMax = new float[cols];
    for (int i = 0; i < x.length; i++) {
      actMax[i % cols] = Math.max(actMax[i % cols], Math.abs(x[i]));
    }
    SmoothQuant.Choice c = SmoothQuant.search(List.of(linear(w, rows)), actMax, x, n, cols);
    System.out.printf(
        "outlier case: plain loss %.4g, smoothed %.4g at alpha %.2f%n",
        c.plainLoss(), c.loss(), c.alpha());
    assertThat(c.smooths()).isTrue();
    assertThat(c.loss()).isLessThan(0.5 * c.plainLoss());
    assertThat(c.scales()[5]).isGreaterThan(c.scales()[4]);
  }

  // ---- the folds on a real model -----------------------------------------------------------

  /** The groups sharing an input, keyed by their first role, with their site and width. */
  private record Group(List<Role> roles, Site site, boolean hidden) {}

  private static final List<Group> GROUPS =
      List.of(
          new Group(List.of(Role.Q, Role.K, Role.V), Site.ATTN_IN, false),
          new Group(List.of(Role.GATE, Role.UP), Site.FFN_IN, false),
          new Group(List.of(Role.DOWN), Site.FFN_HIDDEN, true),
          new Group(List.of(Role.O), Site.ATTN_OUT, false));

  /**
   * stories260K with its grouped-query attention expanded to one k/v head per query head (k and v
   * rows repeated): the same function, and o's input channels then map to v's rows one to one, so
   * the o/v fold runs on real weights too.
   */
  private static ModelWeights multiHead(LlamaConfig c, ModelWeights w) {
    int hs = c.headSize();
    int group = c.heads() / c.kvHeads();
    List<LayerWeights> layers = new ArrayList<>();
    for (LayerWeights l : w.layers()) {
      layers.add(
          new LayerWeights(
              l.attnNorm(),
              l.wq(),
              repeatHeads(l.wk(), c.heads(), group, hs),
              repeatHeads(l.wv(), c.heads(), group, hs),
              l.wo(),
              l.qBias(),
              l.kBias(),
              l.vBias(),
              l.ffnNorm(),
              l.wGate(),
              l.wUp(),
              l.wDown()));
    }
    return new ModelWeights(w.embedding(), layers, w.outputNorm(), w.output());
  }

  private static Tensor repeatHeads(Tensor t, int heads, int group, int hs) {
    float[] src = WeightQuantizer.dequantize(t);
    int cols = t.cols();
    float[] out = new float[heads * hs * cols];
    for (int h = 0; h < heads; h++) {
      System.arraycopy(src, (h / group) * hs * cols, out, h * hs * cols, hs * cols);
    }
    return WeightQuantizer.f32(out, heads * hs, cols);
  }

  private static LlamaConfig withKvHeads(LlamaConfig c, int kvHeads) {
    return new LlamaConfig(
        c.dim(),
        c.hiddenDim(),
        c.layers(),
        c.heads(),
        kvHeads,
        c.vocabSize(),
        c.contextLength(),
        c.ropeTheta(),
        c.normEps(),
        c.ropeStyle());
  }

  /** The logits of every position of {@code seq}. */
  static float[] logits(LlamaConfig c, ModelWeights w, int[] seq) {
    try (ComputePool pool = new ComputePool(1);
        Transformer t = new Transformer(c, w, pool)) {
      ContiguousKvStore kv =
          new ContiguousKvStore(c.layers(), c.kvHeads(), c.headSize(), seq.length, 1);
      Batch b = Batch.ofSequence(kv.acquire(), 0, seq);
      int[] rows = IntStream.range(0, seq.length).toArray();
      return t.forward(new Batch(b.tokens(), b.positions(), b.seqs(), rows), kv);
    }
  }

  /**
   * Folds SmoothQuant factors at {@code a = 0.5} (far from 1: the test must move weights) into
   * every group of every layer, q/k/v and gate/up into the norms, down into up's rows and o into
   * v's rows, and checks that the float model's logits stay the same within float rounding.
   */
  @Test
  void foldsLeaveTheFloatModelsOutputsUnchanged() throws IOException {
    try (Model m =
        ModelOpener.load(SharedModels.require("stories260K/stories260K.gguf"), Optional.empty())) {
      LlamaConfig mha = withKvHeads(m.config(), m.config().heads());
      ModelWeights src = multiHead(m.config(), m.weights());
      Calibration cal = calibration(m);
      int[] seq = cal.sequences().get(0);
      float[] gqaLogits = logits(m.config(), m.weights(), seq);
      float[] before = logits(mha, src, seq);
      assertThat(maxAbsDiff(before, gqaLogits)).as("the expansion is exact").isLessThan(1e-4);

      ActivationStats stats = Quantizer.collect(mha, src, cal);
      Recipe recipe = Recipe.resolve("w8:smoothquant");
      List<LayerWeights> layers = new ArrayList<>();
      double spread = 1;
      for (int l = 0; l < mha.layers(); l++) {
        LayerWeights w = src.layers().get(l);
        Map<Role, Tensor> orig = new HashMap<>();
        for (Role r : List.of(Role.Q, Role.K, Role.V, Role.O, Role.GATE, Role.UP, Role.DOWN)) {
          orig.put(r, Quantizer.matrix(w, r));
        }
        Map<Role, float[]> f = new HashMap<>();
        Map<Role, float[]> colScale = new HashMap<>();
        for (Group g : GROUPS) {
          List<Awq.Linear> linears = Quantizer.groupLinears(l, g.roles(), recipe, orig, f);
          int cols = g.hidden() ? mha.hiddenDim() : mha.dim();
          float[] s =
              SmoothQuant.scales(
                  stats.get(l, g.site()).maxAbs(), SmoothQuant.weightMax(linears, cols), 0.5);
          spread = Math.max(spread, max(s) / min(s));
          colScale.put(g.roles().get(0), s);
        }
        float[] attnNorm = w.attnNorm().clone();
        float[] ffnNorm = w.ffnNorm().clone();
        Quantizer.applyFolds(
            colScale, f, orig, attnNorm, ffnNorm, mha.dim(), mha.hiddenDim(), mha.kvDim());
        layers.add(
            new LayerWeights(
                attnNorm,
                f32(f, Role.Q, orig),
                f32(f, Role.K, orig),
                f32(f, Role.V, orig),
                f32(f, Role.O, orig),
                null,
                null,
                null,
                ffnNorm,
                f32(f, Role.GATE, orig),
                f32(f, Role.UP, orig),
                f32(f, Role.DOWN, orig)));
      }
      float[] after =
          logits(
              mha, new ModelWeights(src.embedding(), layers, src.outputNorm(), src.output()), seq);
      double diff = maxAbsDiff(before, after);
      double range = IntStream.range(0, before.length).mapToDouble(i -> before[i]).max().orElse(1);
      System.out.printf(
          "folds: %d positions, factors spread up to %.3g, max |dlogit| %.3g (logits up to %.3g)%n",
          seq.length, spread, diff, range);
      assertThat(spread).as("the factors move the weights").isGreaterThan(3);
      assertThat(diff).isLessThan(2e-4 * Math.max(1, range));
    }
  }

  private static Tensor f32(Map<Role, float[]> f, Role r, Map<Role, Tensor> orig) {
    Tensor t = orig.get(r);
    return f.containsKey(r) ? WeightQuantizer.f32(f.get(r), t.rows(), t.cols()) : t;
  }

  private static double maxAbsDiff(float[] a, float[] b) {
    double d = 0;
    for (int i = 0; i < a.length; i++) {
      d = Math.max(d, Math.abs(a[i] - b[i]));
    }
    return d;
  }

  private static double max(float[] s) {
    double m = Double.NEGATIVE_INFINITY;
    for (float v : s) {
      m = Math.max(m, v);
    }
    return m;
  }

  private static double min(float[] s) {
    double m = Double.POSITIVE_INFINITY;
    for (float v : s) {
      m = Math.min(m, v);
    }
    return m;
  }

  // ---- the W8A8 output error on the real models --------------------------------------------

  /** Per layer: the W8A8 output error of its groups without and with the chosen smoothing. */
  record LayerLoss(int layer, double plain, double smoothed, String alphas) {}

  /**
   * The search of {@code w8:smoothquant} over every group of every layer of {@code m} (o only
   * without grouped-query attention, as the quantizer folds it), on the built-in calibration text.
   */
  static List<LayerLoss> layerLosses(Model m) throws IOException {
    LlamaConfig c = m.config();
    ActivationStats stats = Quantizer.collect(m, calibration(m));
    Recipe recipe = Recipe.resolve("w8:smoothquant");
    List<LayerLoss> out = new ArrayList<>();
    for (int l = 0; l < c.layers(); l++) {
      LayerWeights w = m.weights().layers().get(l);
      Map<Role, Tensor> orig = new HashMap<>();
      for (Role r : List.of(Role.Q, Role.K, Role.V, Role.O, Role.GATE, Role.UP, Role.DOWN)) {
        orig.put(r, Quantizer.matrix(w, r));
      }
      Map<Role, float[]> f = new HashMap<>();
      double plain = 0;
      double smoothed = 0;
      StringBuilder alphas = new StringBuilder();
      for (Group g : GROUPS) {
        if (g.site() == Site.ATTN_OUT && c.kvHeads() != c.heads()) {
          continue;
        }
        ActivationStats.SiteStats st = stats.get(l, g.site());
        List<Awq.Linear> linears = Quantizer.groupLinears(l, g.roles(), recipe, orig, f);
        SmoothQuant.Choice ch =
            SmoothQuant.search(linears, st.maxAbs(), st.samples(), st.sampleRows(), st.width());
        plain += ch.plainLoss();
        smoothed += ch.loss();
        alphas
            .append(alphas.isEmpty() ? "" : " ")
            .append(g.roles().get(0).jsonName())
            .append('=')
            .append(ch.smooths() ? String.format("%.2f", ch.alpha()) : "none");
      }
      out.add(new LayerLoss(l, plain, smoothed, alphas.toString()));
    }
    return out;
  }

  /**
   * The measurement behind perf/RESULTS.md ("SmoothQuant factors for W8A8"): per layer, the summed
   * squared W8A8 output error over the sampled calibration rows of every group sharing an input,
   * with min-max INT8 weights and per-token INT8 activations, without and with the chosen factors.
   * The search includes no smoothing, so the total can only go down; on stories260K it must go down
   * strictly.
   */
  @ParameterizedTest
  @ValueSource(strings = {"stories260K", "tinystories-656k", "kvant-kjv-7m"})
  void smoothingLowersTheW8a8OutputErrorOnTheCalibrationRows(String name) throws IOException {
    try (Model m = ModelOpener.load(model(name), Optional.empty())) {
      double plain = 0;
      double smoothed = 0;
      for (LayerLoss l : layerLosses(m)) {
        System.out.printf(
            "W8A8 output error %s layer %d: plain %.4g, smoothquant %.4g (%.1f%%), alpha %s%n",
            name,
            l.layer(),
            l.plain(),
            l.smoothed(),
            100 * (l.smoothed() / l.plain() - 1),
            l.alphas());
        plain += l.plain();
        smoothed += l.smoothed();
        assertThat(l.smoothed()).isLessThanOrEqualTo(l.plain());
      }
      System.out.printf(
          "W8A8 output error %s total: plain %.4g, smoothquant %.4g (%.1f%%)%n",
          name, plain, smoothed, 100 * (smoothed / plain - 1));
      if (name.equals("stories260K")) {
        assertThat(smoothed).isLessThan(plain);
      }
    }
  }

  // ---- simulated W8A8 on the CPU -----------------------------------------------------------

  /**
   * The simulation rewrites the inputs of W8A8 matrices only, so it moves an INT8 artifact's logits
   * and leaves a float one alone; matrices that share an input must agree on its code. Prints, on a
   * slice of the held-out stories, W8A8 against the artifact's weight-only products for {@code w8}
   * and {@code w8:smoothquant} (the CPU analogue of the GPU comparison).
   */
  @Test
  void simulatedW8a8QuantizesTheInputsOfW8a8MatricesOnly() throws IOException {
    try (Model m =
            ModelOpener.load(
                SharedModels.require("stories260K/stories260K.gguf"), Optional.empty());
        ComputePool pool = new ComputePool(2)) {
      LlamaConfig c = m.config();
      int[] seq = calibration(m).sequences().get(0);
      W8a8Simulation onFloats = new W8a8Simulation(m.weights());
      assertThat(W8a8Simulation.appliesTo(m.weights())).isFalse();
      Calibration heldOut =
          Calibration.fromText(
              Calibration.builtinHeldOutText().substring(0, 3000), m.tokenizer(), 256);
      Evaluator ev =
          new Evaluator(
              c, pool, () -> new ContiguousKvStore(c.layers(), c.kvHeads(), c.headSize(), 256, 1));
      for (String recipe : List.of("w8", "w8:smoothquant")) {
        ModelWeights q =
            new Quantizer(Clock.fixed(T0, ZoneOffset.UTC), "test")
                .run(m, Recipe.resolve(recipe), calibration(m))
                .model()
                .weights();
        W8a8Simulation sim = new W8a8Simulation(q);
        try (Transformer weightOnly = new Transformer(c, q, pool);
            Transformer w8a8 = new Transformer(c, q, pool, sim)) {
          Evaluator.Result r =
              ev.compare(
                  weightOnly,
                  w8a8,
                  heldOut.sequences(),
                  () -> new ContiguousKvStore(c.layers(), c.kvHeads(), c.headSize(), 256, 1));
          System.out.printf(
              "simulated W8A8 vs weight-only, stories260K %s: %d positions, top-1 excl. ties %.4f,"
                  + " KL %.3g, perplexity %+.3f%%%n",
              recipe,
              r.positions(),
              r.top1AgreementExcludingTies(),
              r.meanKl(),
              100 * (r.pplCandidate() / r.pplReference() - 1));
          // 5 layers x 4 sites + lm_head, per forward step.
          assertThat(sim.simulated()).isEqualTo(heldOut.sequences().size() * (5 * 4 + 1));
          assertThat(r.meanKl()).isPositive();
          assertThat(r.top1AgreementExcludingTies()).isGreaterThan(0.95);
        }
      }
      float[] plain = logits(c, m.weights(), seq);
      float[] watched;
      try (Transformer t = new Transformer(c, m.weights(), pool, onFloats)) {
        ContiguousKvStore kv =
            new ContiguousKvStore(c.layers(), c.kvHeads(), c.headSize(), seq.length, 1);
        Batch b = Batch.ofSequence(kv.acquire(), 0, seq);
        int[] rows = IntStream.range(0, seq.length).toArray();
        watched = t.forward(new Batch(b.tokens(), b.positions(), b.seqs(), rows), kv);
      }
      assertThat(watched).containsExactly(plain);
      assertThat(onFloats.simulated()).isZero();
      LayerWeights l0 = m.weights().layers().get(0);
      Tensor q8 =
          WeightQuantizer.quantize(
                  "q",
                  WeightQuantizer.dequantize(l0.wq()),
                  l0.wq().rows(),
                  l0.wq().cols(),
                  QuantSpec.int8(Method.MINMAX),
                  null)
              .tensor();
      List<LayerWeights> mixed = new ArrayList<>(m.weights().layers());
      mixed.set(
          0,
          new LayerWeights(
              l0.attnNorm(),
              q8,
              l0.wk(),
              l0.wv(),
              l0.wo(),
              null,
              null,
              null,
              l0.ffnNorm(),
              l0.wGate(),
              l0.wUp(),
              l0.wDown()));
      ModelWeights w = m.weights();
      assertThatThrownBy(
              () ->
                  new W8a8Simulation(
                      new ModelWeights(w.embedding(), mixed, w.outputNorm(), w.output())))
          .hasMessageContaining("q, k, v of layer 0 share an input");
    }
  }

  // ---- the recipe --------------------------------------------------------------------------

  @Test
  void w8SmoothquantQuantizesEveryLinearAndRecordsTheMethod() throws IOException {
    try (Model m =
        ModelOpener.load(SharedModels.require("stories260K/stories260K.gguf"), Optional.empty())) {
      QuantizedModel q =
          new Quantizer(Clock.fixed(T0, ZoneOffset.UTC), "test")
              .run(m, Recipe.resolve("w8:smoothquant"), calibration(m));
      LayerWeights dst = q.model().weights().layers().get(0);
      assertThat(dst.wq().dtype()).isEqualTo(DType.I8);
      assertThat(dst.wDown().dtype()).isEqualTo(DType.I8);
      assertThat(q.qbom().stream().filter(e -> e.method().equals("smoothquant")).count())
          .isEqualTo(5 * 7);
      // lm_head (tied to the embedding here) has no foldable input: min-max INT8.
      assertThat(q.qbom().stream().filter(e -> e.role().equals("lm_head")).map(QbomEntry::method))
          .containsOnly("minmax");
      boolean anyNormChanged = false;
      for (int l = 0; l < m.config().layers(); l++) {
        LayerWeights s = m.weights().layers().get(l);
        LayerWeights d = q.model().weights().layers().get(l);
        anyNormChanged |=
            !java.util.Arrays.equals(s.attnNorm(), d.attnNorm())
                || !java.util.Arrays.equals(s.ffnNorm(), d.ffnNorm());
      }
      assertThat(anyNormChanged).as("some factors were folded into a norm").isTrue();
      assertThat(Recipe.resolve("w8:smoothquant").needsActivations()).isTrue();
    }
  }

  @Test
  void badSmoothquantRecipesSayWhatIsWrong() throws IOException {
    assertThatThrownBy(() -> Recipe.resolve("w4g128:smoothquant"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("role 'q'")
        .hasMessageContaining("smoothquant needs int8 or fp8_e4m3 weights");
    assertThatThrownBy(
            () ->
                Recipe.parse(
                    "{\"extends\": \"w8\", \"roles\": {\"q\": {\"type\": \"int8\", \"method\":"
                        + " \"awq\"}, \"k\": {\"type\": \"int8\", \"method\": \"smoothquant\"}}}"))
        .hasMessageContaining("awq and smoothquant cannot both scale it");
    assertThatThrownBy(
            () ->
                Recipe.parse(
                    "{\"roles\": {\"down\": {\"type\": \"fp8_e5m2\", \"method\": \"smoothquant\"}}}"))
        .hasMessageContaining("role 'down'")
        .hasMessageContaining("not fp8_e5m2");
    assertThat(Method.parse("smooth-quant")).isEqualTo(Method.SMOOTHQUANT);
    assertThat(Recipe.resolve("fp8:smoothquant").spec(Role.Q).method())
        .isEqualTo(Method.SMOOTHQUANT);
  }
}
