package io.kvant.cuda.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kvant.cuda.CudaBackend;
import io.kvant.cuda.GpuFixture;
import io.kvant.engine.forward.Batch;
import io.kvant.engine.forward.DeviceSampling;
import io.kvant.engine.forward.Transformer;
import io.kvant.engine.kv.EvictionPolicyKind;
import io.kvant.engine.kv.KvCacheConfig;
import io.kvant.engine.kv.KvCacheManager;
import io.kvant.engine.kv.KvCacheType;
import io.kvant.engine.kv.KvEncoding;
import io.kvant.engine.kv.KvGeometry;
import io.kvant.engine.kv.KvScales;
import io.kvant.engine.model.LayerWeights;
import io.kvant.engine.model.Model;
import io.kvant.engine.model.ModelLoader;
import io.kvant.engine.model.ModelWeights;
import io.kvant.engine.tensor.ComputePool;
import io.kvant.engine.tensor.DType;
import io.kvant.engine.testing.SharedModels;
import io.kvant.quant.quantize.Calibration;
import io.kvant.quant.quantize.KvCalibration;
import io.kvant.quant.quantize.Quantizer;
import io.kvant.quant.quantize.Recipe;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The CUDA backend against the CPU engine on the real models (needs a GPU). Each comparison runs
 * 2,000+ positions of continuous batching (prefill chunks, then decode of mixed lengths).
 */
@Tag("gpu")
class CudaModelGpuTest {
  static Path model(String name) {
    return switch (name) {
      case "stories260K" -> SharedModels.require("stories260K/stories260K.gguf");
      case "tinystories-656k" -> SharedModels.require("tinystories-656k/config.json").getParent();
      case "bundled" -> bundled();
      default -> throw new IllegalArgumentException(name);
    };
  }

  static Path bundled() {
    for (Path d = Path.of("").toAbsolutePath(); d != null; d = d.getParent()) {
      Path p = d.resolve("models/kvant-kjv-7m.gguf");
      if (Files.isRegularFile(p)) {
        return p;
      }
    }
    throw new IllegalStateException("models/kvant-kjv-7m.gguf not found above the working dir");
  }

  private static void report(String what, CpuGpuComparison.Result r) {
    System.out.printf(
        "GPU-vs-CPU %s: %d positions, max |dlogit| %.3g, top-1 %.4f, near ties %d, top-1 excl. ties"
            + " %.4f, perplexity CPU %.5g GPU %.5g, graph launches %d, fused layers %d%n",
        what,
        r.positions(),
        r.maxAbsDiff(),
        (double) r.top1Agree() / r.positions(),
        r.nearTies(),
        r.agreementExcludingNearTies(),
        r.cpuPerplexity(),
        r.gpuPerplexity(),
        r.graphLaunches(),
        r.fusedLayers());
  }

  /**
   * Perplexities within 0.2% of each other. The comparison's tokens are random, so perplexities are
   * of order 1e7-1e8 and dominated by very unlikely tokens, where the engines' different summation
   * orders show most; real-text perplexities (eval, perf/RESULTS.md) agree far closer.
   */
  static void assertSamePerplexity(CpuGpuComparison.Result r) {
    assertThat(Math.abs(Math.log(r.gpuPerplexity() / r.cpuPerplexity()))).isLessThan(2e-3);
  }

  /**
   * The engines' parity bar on a comparison of at least 2,000 positions: top-1 agreement excluding
   * near ties at least 99.5% and the same perplexity ({@link #assertSamePerplexity}).
   */
  static void assertParity(CpuGpuComparison.Result r) {
    assertThat(r.positions()).isGreaterThanOrEqualTo(2000);
    assertThat(r.agreementExcludingNearTies()).isGreaterThanOrEqualTo(0.995);
    assertSamePerplexity(r);
  }

  /**
   * Quantized weights (every matrix but the embedding, in each type the CUDA backend reads) on both
   * engines: the GPU's qgemv/tile-decode products against the CPU's decoders. The tokens are
   * random, so the perplexity compared is that of random text: a check that both engines assign the
   * same probabilities, not a quality figure. tinystories-656k joins when its loader lands.
   */
  @ParameterizedTest
  @ValueSource(
      strings = {
        "stories260K:I8",
        "stories260K:I4:g32",
        "stories260K:I4:g32:asym",
        "stories260K:F8_E4M3",
        "stories260K:F8_E4M3:tensor",
        "bundled:I8",
        "bundled:I4:g128",
        "bundled:I4:g32:asym",
        "bundled:F8_E4M3",
        "bundled:F8_E5M2",
        "bundled:Q8_0",
        "bundled:Q4_0"
      })
  void quantizedWeightsAgreeWithTheCpuEngine(String spec) throws Exception {
    String name = spec.substring(0, spec.indexOf(':'));
    QuantFixtures.Kind kind = QuantFixtures.Kind.parse(spec.substring(spec.indexOf(':') + 1));
    CudaBackend backend = GpuFixture.backend();
    try (Model m = ModelLoader.load(model(name), Optional.empty())) {
      ModelWeights w = QuantFixtures.quantizeModel(m.weights(), kind);
      int len = Math.min(m.config().contextLength(), 480);
      int seqs = (2100 + len - 1) / len;
      CpuGpuComparison.Result r =
          CpuGpuComparison.run(backend, m.config(), w, KvCacheType.F32, seqs, len, 11);
      report(spec + " (F32 KV)", r);
      assertParity(r);
    }
  }

  /**
   * The W8A8 products (activations quantized per token, cuBLASLt on the codes) forced for every
   * step of more than the fused path's rows, against the CPU engine's weight-only products of the
   * same artifact. They do not reach the engines' parity bar (top-1 99.5% excluding near ties,
   * perplexity to 3 digits): measured on the H200, INT8 99.2-99.3% and perplexity within 0.1%, FP8
   * 95.7-98.0% and 1.1-1.5% (perf/RESULTS.md), which is why W8A8 is off by default
   * (docs/DECISIONS.md). The floors below hold those figures against regressions (a broken product
   * or scale lands far below them); the perplexity change is printed for the record.
   */
  @ParameterizedTest
  @ValueSource(
      strings = {
        "stories260K:I8",
        "stories260K:F8_E4M3",
        "stories260K:F8_E4M3:tensor",
        "tinystories-656k:I8",
        "tinystories-656k:F8_E4M3",
        "bundled:I8",
        "bundled:F8_E4M3"
      })
  void w8a8ProductsAgreeWithTheCpuEngine(String spec) throws Exception {
    String name = spec.substring(0, spec.indexOf(':'));
    QuantFixtures.Kind kind = QuantFixtures.Kind.parse(spec.substring(spec.indexOf(':') + 1));
    CudaBackend backend = GpuFixture.w8a8Backend();
    try (Model m = ModelLoader.load(model(name), Optional.empty())) {
      ModelWeights w = QuantFixtures.quantizeModel(m.weights(), kind);
      CpuGpuComparison.Result r = compareOnW8a8(spec, backend, m, w);
      assertThat(r.agreementExcludingNearTies())
          .isGreaterThanOrEqualTo(kind.type() == DType.I8 ? 0.985 : 0.94);
      assertThat(Math.abs(Math.log(r.gpuPerplexity() / r.cpuPerplexity())))
          .isLessThan(kind.type() == DType.I8 ? 0.005 : 0.025);
    }
  }

  /**
   * {@code w} on the GPU with W8A8 forced from one row against the CPU engine's weight-only
   * products, 2,100+ random positions in sequences of up to 480: reported, printed, and checked for
   * what every W8A8 comparison needs (W8A8 ran, the positions were compared).
   */
  private static CpuGpuComparison.Result compareOnW8a8(
      String spec, CudaBackend backend, Model m, ModelWeights w) {
    int len = Math.min(m.config().contextLength(), 480);
    int seqs = (2100 + len - 1) / len;
    CpuGpuComparison.Result r =
        CpuGpuComparison.run(
            backend,
            m.config(),
            w,
            KvCacheType.F32,
            KvCacheType.F32,
            seqs,
            len,
            11,
            CpuGpuComparison.Options.DEFAULT.withSetup(gpu -> gpu.setW8a8MinRows(1)));
    report(spec + " (W8A8 forced)", r);
    System.out.printf(
        "W8A8 %s: %d products, perplexity change GPU/CPU %+.3f%%%n",
        spec, r.w8a8Products(), 100 * (r.gpuPerplexity() / r.cpuPerplexity() - 1));
    assertThat(r.w8a8Products()).as("products that ran W8A8").isPositive();
    assertThat(r.positions()).isGreaterThanOrEqualTo(2000);
    return r;
  }

  /**
   * The quantizer's INT8 per-channel artifacts on the real models, min-max ({@code w8}) and with
   * SmoothQuant factors ({@code w8:smoothquant}, calibrated on the built-in text as {@code
   * --weights} does), with W8A8 forced from one row against the CPU engine's weight-only products
   * of the same artifact: what the smoothing does to W8A8's distance from the parity bar (99.5%
   * top-1 excluding near ties). Random tokens, as the other comparisons; the floors are those of
   * {@link #w8a8ProductsAgreeWithTheCpuEngine} (INT8), the figures are printed for the record. The
   * smoothed artifacts get a perplexity floor of 1% instead of 0.5%: on the H200 (session 11)
   * {@code bundled:w8:smoothquant} moved it by -0.73% (top-1 0.9912), min-max {@code w8} by -0.03%:
   * the smoothing moves W8A8 further from the weight-only products on that model, which is what
   * this test measures, not a kernel fault (the products are checked against their quantized
   * reference in {@code W8a8GpuTest}).
   */
  @ParameterizedTest
  @ValueSource(
      strings = {
        "stories260K:w8",
        "stories260K:w8:smoothquant",
        "tinystories-656k:w8",
        "tinystories-656k:w8:smoothquant",
        "bundled:w8",
        "bundled:w8:smoothquant"
      })
  void smoothQuantArtifactsOnW8a8AgreeWithTheCpuEngine(String spec) throws Exception {
    String name = spec.substring(0, spec.indexOf(':'));
    String recipe = spec.substring(spec.indexOf(':') + 1);
    CudaBackend backend = GpuFixture.w8a8Backend();
    try (Model m = ModelLoader.load(model(name), Optional.empty())) {
      Calibration cal =
          Calibration.fromText(
              Calibration.builtinCalibrationText(),
              m.tokenizer(),
              Math.min(256, m.config().contextLength()));
      ModelWeights w = Quantizer.quantize(m, Recipe.resolve(recipe), cal).weights();
      CpuGpuComparison.Result r = compareOnW8a8(spec, backend, m, w);
      assertThat(r.agreementExcludingNearTies()).isGreaterThanOrEqualTo(0.985);
      assertThat(Math.abs(Math.log(r.gpuPerplexity() / r.cpuPerplexity())))
          .isLessThan(recipe.endsWith(":smoothquant") ? 0.01 : 0.005);
    }
  }

  /**
   * Few-row decode steps, which run the fused launches (norm + q/k/v, norm + gate/up + SwiGLU, rope
   * with the KV append), against the CPU engine: one sequence at a time for dense half weights (the
   * fused path serves one row of them), three for quantized ones.
   */
  @ParameterizedTest
  @ValueSource(
      strings = {
        "stories260K:F16",
        "tinystories-656k:BF16",
        "bundled:F16",
        "stories260K:I8",
        "tinystories-656k:I4:g32",
        "bundled:F8_E4M3",
        "bundled:Q4_0"
      })
  void fusedDecodeStepsAgreeWithTheCpuEngine(String spec) throws Exception {
    String type = spec.substring(spec.indexOf(':') + 1);
    boolean dense = type.equals("F16") || type.equals("BF16");
    decodeAgreesWithTheCpuEngine(
        spec, "fused decode", 17, CpuGpuComparison.Options.DEFAULT.withMaxSequences(dense ? 1 : 3));
  }

  /**
   * Single-sequence decode on the staged products ({@link MgemvSplits#MQ_STAGED}: one row's
   * activations in F16 and the tile's scales in shared memory, the weights through cp.async, the
   * RMSNorm folded in) against the CPU engine, for 4-bit groups (symmetric and asymmetric), Q4_0,
   * INT8 and FP8.
   */
  @ParameterizedTest
  @ValueSource(
      strings = {
        "bundled:I4:g128",
        "tinystories-656k:I4:g32:asym",
        "bundled:Q4_0",
        "stories260K:I8",
        "bundled:F8_E4M3"
      })
  void stagedSingleRowDecodeAgreesWithTheCpuEngine(String spec) throws Exception {
    decodeAgreesWithTheCpuEngine(
        spec,
        "staged single-row decode",
        29,
        CpuGpuComparison.Options.DEFAULT
            .withMaxSequences(1)
            .withSetup(gpu -> gpu.setMgemvSplits(MgemvSplits.MQ_STAGED)));
  }

  /**
   * Decode steps with RoPE, the KV append and attention in one launch per layer ({@link
   * DecodeFusion#PRODUCTS_AND_ATTENTION}: attention_decode), up to eight sequences in flight,
   * against the CPU engine (F16 KV on the GPU); the one-launch path must have run.
   */
  @ParameterizedTest
  @ValueSource(
      strings = {"bundled:I4:g128", "tinystories-656k:F16", "stories260K:I8", "bundled:F8_E4M3"})
  void oneLaunchDecodeAttentionAgreesWithTheCpuEngine(String spec) throws Exception {
    AtomicReference<CudaTransformer> gpu = new AtomicReference<>();
    decodeAgreesWithTheCpuEngine(
        spec,
        "attention in one launch",
        31,
        oneLaunch(CpuGpuComparison.Options.DEFAULT, DecodeFusion.PRODUCTS_AND_ATTENTION, gpu));
    assertThat(gpu.get().decodeAttentionLayers()).as("layers on attention_decode").isPositive();
    assertThat(gpu.get().warpAttentionLayers()).as("layers on attention_rows").isZero();
  }

  /**
   * Decode steps with attention by a warp per range of positions ({@link
   * DecodeFusion#PRODUCTS_AND_WARP_ATTENTION}: attention_rows, the bundled model's head size 32),
   * against the CPU engine, F16 KV on the GPU ({@code model:weights}); the warp path must have run.
   */
  @ParameterizedTest
  @ValueSource(strings = {"bundled:I4:g128", "bundled:F8_E4M3", "bundled:BF16"})
  void warpPerRangeDecodeAttentionAgreesWithTheCpuEngine(String spec) throws Exception {
    AtomicReference<CudaTransformer> gpu = new AtomicReference<>();
    decodeAgreesWithTheCpuEngine(
        spec,
        "attention by a warp per range",
        41,
        oneLaunch(CpuGpuComparison.Options.DEFAULT, DecodeFusion.PRODUCTS_AND_WARP_ATTENTION, gpu));
    assertThat(gpu.get().warpAttentionLayers()).as("layers on attention_rows").isPositive();
    assertThat(gpu.get().headAttentionLayers()).as("layers with a block per head").isZero();
  }

  /**
   * {@link #warpPerRangeDecodeAttentionAgreesWithTheCpuEngine} with a block per query head ({@link
   * DecodeFusion#PRODUCTS_AND_HEAD_ATTENTION}, the bundled model's F16 KV and few rows).
   */
  @ParameterizedTest
  @ValueSource(strings = {"bundled:I4:g128", "bundled:BF16"})
  void blockPerHeadDecodeAttentionAgreesWithTheCpuEngine(String spec) throws Exception {
    AtomicReference<CudaTransformer> gpu = new AtomicReference<>();
    decodeAgreesWithTheCpuEngine(
        spec,
        "attention by a block per query head",
        41, // the warp-per-range test's seed: the same sequences, so the same fused launches
        oneLaunch(CpuGpuComparison.Options.DEFAULT, DecodeFusion.PRODUCTS_AND_HEAD_ATTENTION, gpu));
    assertThat(gpu.get().headAttentionLayers()).as("layers with a block per head").isPositive();
  }

  /**
   * {@link #warpPerRangeDecodeAttentionAgreesWithTheCpuEngine} with INT8 and FP8 KV on both engines
   * ({@code model:kv type:encoding}: token scales, searched, keys per channel).
   */
  @ParameterizedTest
  @ValueSource(
      strings = {
        "bundled:INT8:PER_TOKEN",
        "bundled:FP8_E4M3:PER_TOKEN_MSE",
        "bundled:INT8:KIVI",
        "bundled:FP8_E4M3:KIVI_MSE"
      })
  void warpPerRangeDecodeAttentionOnQuantizedKvAgreesWithTheCpuEngine(String spec)
      throws Exception {
    AtomicReference<CudaTransformer> gpu = new AtomicReference<>();
    quantizedKvAgrees(spec, DecodeFusion.PRODUCTS_AND_WARP_ATTENTION, gpu);
    assertThat(gpu.get().warpAttentionLayers()).as("layers on attention_rows").isPositive();
  }

  /**
   * {@link #warpPerRangeDecodeAttentionOnQuantizedKvAgreesWithTheCpuEngine} with a block per query
   * head (INT8/FP8 with token scales: every block codes the appended row itself).
   */
  @ParameterizedTest
  @ValueSource(strings = {"bundled:INT8:PER_TOKEN", "bundled:FP8_E4M3:PER_TOKEN_MSE"})
  void blockPerHeadDecodeAttentionOnQuantizedKvAgreesWithTheCpuEngine(String spec)
      throws Exception {
    AtomicReference<CudaTransformer> gpu = new AtomicReference<>();
    quantizedKvAgrees(spec, DecodeFusion.PRODUCTS_AND_HEAD_ATTENTION, gpu);
    assertThat(gpu.get().headAttentionLayers()).as("layers with a block per head").isPositive();
  }

  /**
   * {@code base} with up to eight sequences in flight and {@code fusion} set on the GPU's forward
   * pass, which lands in {@code gpu}.
   */
  private static CpuGpuComparison.Options oneLaunch(
      CpuGpuComparison.Options base, DecodeFusion fusion, AtomicReference<CudaTransformer> gpu) {
    return base.withMaxSequences(8)
        .withSetup(
            t -> {
              t.setDecodeFusion(fusion);
              gpu.set(t);
            });
  }

  /**
   * {@link #oneLaunchDecodeAttentionAgreesWithTheCpuEngine} with INT8 and FP8 KV (token scales,
   * absmax or searched, and keys per channel, written by attention_decode's append): against the
   * CPU engine's store of the same type and encoding ({@code model:type[:encoding]}, per-token by
   * default).
   */
  @ParameterizedTest
  @ValueSource(
      strings = {
        "stories260K:INT8",
        "tinystories-656k:FP8_E4M3",
        "bundled:INT8",
        "stories260K:INT8:KIVI",
        "bundled:FP8_E4M3:PER_TOKEN_MSE",
        "tinystories-656k:INT8:KIVI_MSE"
      })
  void oneLaunchDecodeAttentionOnQuantizedKvAgreesWithTheCpuEngine(String spec) throws Exception {
    AtomicReference<CudaTransformer> gpu = new AtomicReference<>();
    quantizedKvAgrees(spec, DecodeFusion.PRODUCTS_AND_ATTENTION, gpu);
    assertThat(gpu.get().decodeAttentionLayers()).as("layers on attention_decode").isPositive();
  }

  /**
   * {@code spec}'s model ({@code model:kv type[:encoding]}) decoded on both engines with that KV
   * cache, under {@code fusion} on the GPU (whose forward pass lands in {@code gpu}): they agree.
   */
  private static void quantizedKvAgrees(
      String spec, DecodeFusion fusion, AtomicReference<CudaTransformer> gpu) throws Exception {
    String[] parts = spec.split(":");
    String name = parts[0];
    KvCacheType kv = KvCacheType.valueOf(parts[1]);
    KvEncoding encoding = parts.length > 2 ? KvEncoding.valueOf(parts[2]) : KvEncoding.PER_TOKEN;
    CudaBackend backend = GpuFixture.backend();
    try (Model m = ModelLoader.load(model(name), Optional.empty())) {
      ModelWeights w = CpuGpuComparison.convert(m.weights(), DType.F32);
      int len = Math.min(m.config().contextLength(), 480);
      int seqs = (2100 + len - 1) / len;
      CpuGpuComparison.Result r =
          CpuGpuComparison.run(
              backend,
              m.config(),
              w,
              kv,
              kv,
              seqs,
              len,
              37,
              oneLaunch(CpuGpuComparison.Options.DEFAULT.withEncoding(encoding), fusion, gpu));
      report(spec + " KV on both engines (" + fusion + ")", r);
      assertParity(r);
    }
  }

  /**
   * {@code spec}'s model ({@code name:type}: dense F16/BF16 weights converted, other types
   * quantized by {@link QuantFixtures}) decoded on both engines, F32 KV on the CPU and F16 on the
   * GPU, under {@code options}: the fused decode launches ran, and the two agree ({@link
   * #assertParity}).
   */
  private static void decodeAgreesWithTheCpuEngine(
      String spec, String what, int seed, CpuGpuComparison.Options options) throws Exception {
    String name = spec.substring(0, spec.indexOf(':'));
    String type = spec.substring(spec.indexOf(':') + 1);
    boolean dense = type.equals("F16") || type.equals("BF16");
    CudaBackend backend = GpuFixture.backend();
    try (Model m = ModelLoader.load(model(name), Optional.empty())) {
      ModelWeights w =
          dense
              ? CpuGpuComparison.convert(m.weights(), DType.valueOf(type))
              : QuantFixtures.quantizeModel(m.weights(), QuantFixtures.Kind.parse(type));
      int len = Math.min(m.config().contextLength(), 480);
      int seqs = (2100 + len - 1) / len;
      CpuGpuComparison.Result r =
          CpuGpuComparison.run(
              backend, m.config(), w, KvCacheType.F32, KvCacheType.F16, seqs, len, seed, options);
      report(spec + " (" + what + ")", r);
      assertThat(r.fusedLayers()).as("layers that ran fused").isGreaterThan(0);
      assertParity(r);
    }
  }

  /**
   * The tiled products at 17-32 rows ({@link MgemvSplits#MQ_32}: four mmas per weight fragment,
   * written without a GPU in session 12) against the CPU engine: 24 sequences in flight, so the
   * decode steps have 17-24 rows, and the prefill chunks of 17-32 rows take them too.
   */
  @ParameterizedTest
  @ValueSource(strings = {"bundled:I4:g128", "bundled:Q4_0", "bundled:Q8_0", "bundled:F8_E4M3"})
  void tiledProductsOfUpTo32RowsAgreeWithTheCpuEngine(String spec) throws Exception {
    tiledPolicyAgrees(spec, MgemvSplits.MQ_32, 24, 96, 23, "tiled products up to 32 rows");
  }

  /**
   * The wide tiled products ({@code mqw}, {@link MgemvSplits#MQ_WIDE}) in whole forward passes: up
   * to 96 sequences in flight, so decode steps and prefill chunks of 33-192 rows take {@code mqw}
   * (columns split or not, by the matrix), against the CPU engine on the same artifact.
   */
  @ParameterizedTest
  @ValueSource(strings = {"bundled:I4:g128", "bundled:Q4_0", "bundled:Q8_0", "bundled:F8_E4M3"})
  void wideTiledProductsAgreeWithTheCpuEngine(String spec) throws Exception {
    tiledPolicyAgrees(spec, MgemvSplits.MQ_WIDE, 96, 48, 29, "wide tiled products, up to 96 rows");
  }

  /**
   * {@code spec} ("model:kind") quantized, on the GPU under {@code policy} with at most {@code
   * inFlight} sequences of {@code len} tokens at a time (at least 2,100 positions in all), against
   * the CPU engine: parity as {@link #assertParity}.
   */
  private void tiledPolicyAgrees(
      String spec, MgemvSplits policy, int inFlight, int maxLen, long seed, String what)
      throws Exception {
    String name = spec.substring(0, spec.indexOf(':'));
    QuantFixtures.Kind kind = QuantFixtures.Kind.parse(spec.substring(spec.indexOf(':') + 1));
    CudaBackend backend = GpuFixture.backend();
    try (Model m = ModelLoader.load(model(name), Optional.empty())) {
      ModelWeights w = QuantFixtures.quantizeModel(m.weights(), kind);
      int len = Math.min(m.config().contextLength(), maxLen);
      int seqs = Math.max(inFlight, (2100 + len - 1) / len);
      CpuGpuComparison.Result r =
          CpuGpuComparison.run(
              backend,
              m.config(),
              w,
              KvCacheType.F32,
              KvCacheType.F32,
              seqs,
              len,
              seed,
              CpuGpuComparison.Options.DEFAULT
                  .withMaxSequences(inFlight)
                  .withSetup(gpu -> gpu.setMgemvSplits(policy)));
      report(spec + " (" + what + ")", r);
      assertParity(r);
    }
  }

  /**
   * INT8 and FP8 KV on the GPU against the CPU engine's store of the same type (same encoding: the
   * engines must agree), and, reported for the record, against F32 KV on the CPU (what the
   * quantized cache costs in quality).
   */
  @ParameterizedTest
  @ValueSource(
      strings = {
        "stories260K:INT8",
        "stories260K:FP8_E4M3",
        "tinystories-656k:INT8",
        "tinystories-656k:FP8_E4M3",
        "bundled:INT8",
        "bundled:FP8_E4M3"
      })
  void quantizedKvAgreesWithTheCpusQuantizedKv(String spec) throws Exception {
    String name = spec.split(":")[0];
    KvCacheType kv = KvCacheType.valueOf(spec.split(":")[1]);
    CudaBackend backend = GpuFixture.backend();
    try (Model m = ModelLoader.load(model(name), Optional.empty())) {
      ModelWeights w = CpuGpuComparison.convert(m.weights(), DType.F32);
      int len = Math.min(m.config().contextLength(), 480);
      int seqs = (2100 + len - 1) / len;
      CpuGpuComparison.Result same =
          CpuGpuComparison.run(backend, m.config(), w, kv, kv, seqs, len, 5);
      report(spec + " KV on both engines", same);
      CpuGpuComparison.Result quality =
          CpuGpuComparison.run(backend, m.config(), w, KvCacheType.F32, kv, seqs, len, 5);
      report(spec + " KV on the GPU vs F32 KV on the CPU", quality);
      assertThat(same.positions()).isGreaterThanOrEqualTo(2000);
      assertThat(same.agreementExcludingNearTies()).isGreaterThanOrEqualTo(0.995);
      assertSamePerplexity(same);
    }
  }

  /**
   * The encodings beyond per-token (least-squares token scales, KIVI's keys per channel, centered
   * keys) on the GPU against the CPU engine's store of the same type and encoding (the engines must
   * agree), and, reported for the record, against F32 KV on the CPU (the quality figure). The
   * centered encodings' statistics come from the calibration {@code serve} runs at load ({@link
   * #centeredStatistics}), given to both engines.
   */
  @ParameterizedTest
  @ValueSource(
      strings = {
        "stories260K:INT8:KIVI",
        "stories260K:INT8:KIVI_MSE",
        "stories260K:FP8_E4M3:PER_TOKEN_MSE",
        "stories260K:FP8_E4M3:KIVI",
        "tinystories-656k:INT8:KIVI",
        "tinystories-656k:INT8:KIVI_MSE",
        "tinystories-656k:FP8_E4M3:PER_TOKEN_MSE",
        "bundled:INT8:KIVI",
        "bundled:INT8:KIVI_MSE",
        "bundled:FP8_E4M3:PER_TOKEN_MSE",
        "bundled:INT8:PER_TOKEN_MSE",
        "stories260K:FP8_E4M3:CENTERED_MSE",
        "stories260K:FP8_E4M3:CENTERED_QMSE",
        "stories260K:INT8:CENTERED_QMSE",
        "tinystories-656k:FP8_E4M3:CENTERED_MSE",
        "tinystories-656k:FP8_E4M3:CENTERED_QMSE",
        "tinystories-656k:INT8:CENTERED_QMSE",
        "bundled:FP8_E4M3:CENTERED_MSE",
        "bundled:FP8_E4M3:CENTERED_QMSE",
        "bundled:INT8:CENTERED_QMSE"
      })
  void encodedKvAgreesWithTheCpusSameEncoding(String spec) throws Exception {
    String[] p = spec.split(":");
    String name = p[0];
    KvCacheType kv = KvCacheType.valueOf(p[1]);
    KvEncoding enc = KvEncoding.valueOf(p[2]);
    CudaBackend backend = GpuFixture.backend();
    try (Model m = ModelLoader.load(model(name), Optional.empty())) {
      ModelWeights w = CpuGpuComparison.convert(m.weights(), DType.F32);
      int len = Math.min(m.config().contextLength(), 480);
      int seqs = (2100 + len - 1) / len;
      CpuGpuComparison.Options encoded =
          CpuGpuComparison.Options.DEFAULT
              .withEncoding(enc)
              .withScales(enc.centersKeys() ? centeredStatistics(m) : null);
      CpuGpuComparison.Result same =
          CpuGpuComparison.run(backend, m.config(), w, kv, kv, seqs, len, 5, encoded);
      report(spec + " KV on both engines", same);
      CpuGpuComparison.Result quality =
          CpuGpuComparison.run(backend, m.config(), w, KvCacheType.F32, kv, seqs, len, 5, encoded);
      report(spec + " KV on the GPU vs F32 KV on the CPU", quality);
      // Few rows in flight: decode steps through the captured graphs and the fused paths.
      CpuGpuComparison.Result few =
          CpuGpuComparison.run(
              backend, m.config(), w, kv, kv, seqs, len, 9, encoded.withMaxSequences(2));
      report(spec + " KV on both engines, 2 sequences at a time", few);
      for (CpuGpuComparison.Result r : new CpuGpuComparison.Result[] {same, few}) {
        assertThat(r.positions()).isGreaterThanOrEqualTo(2000);
        assertThat(r.agreementExcludingNearTies()).isGreaterThanOrEqualTo(0.995);
        assertSamePerplexity(r);
      }
    }
  }

  /**
   * The centered encodings' statistics of {@code m} as {@code serve} measures them at load
   * (KvCalibrationAtLoad): the key means before RoPE and the queries' second moments, over the
   * built-in calibration text in chunks of up to 256 tokens, on the CPU.
   */
  static KvScales centeredStatistics(Model m) {
    Calibration cal =
        Calibration.fromText(
            Calibration.builtinCalibrationText(),
            m.tokenizer(),
            Math.min(256, m.config().contextLength()));
    try (ComputePool pool = new ComputePool(2);
        Transformer engine = new Transformer(m.config(), m.weights(), pool)) {
      return KvCalibration.measure(engine, cal.sequences(), false, true);
    }
  }

  /**
   * The GPU's default encodings are the CPU's: kivi for INT8, per-token-mse for FP8, centered-qmse
   * for FP8 with calibrated key moments.
   */
  @Test
  void theDefaultEncodingsAreTheCpus() throws Exception {
    CudaBackend backend = GpuFixture.backend();
    KvScales moments;
    try (Model m = ModelLoader.load(model("stories260K"), Optional.empty())) {
      moments = centeredStatistics(m);
    }
    for (KvCacheType t : KvCacheType.values()) {
      assertThat(backend.defaultKvEncoding(t)).isEqualTo(KvEncoding.cpuDefault(t));
      assertThat(backend.defaultKvEncoding(t, null)).isEqualTo(KvEncoding.cpuDefault(t));
      assertThat(backend.defaultKvEncoding(t, moments)).isEqualTo(KvEncoding.cpuDefault(t, true));
    }
    assertThat(backend.defaultKvEncoding(KvCacheType.FP8_E4M3, moments))
        .isEqualTo(KvEncoding.CENTERED_QMSE);
    assertThatThrownBy(() -> backend.kvStorage(KvEncoding.HADAMARD))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("kv encoding hadamard:");
  }

  @ParameterizedTest
  @ValueSource(strings = {"stories260K", "tinystories-656k", "bundled"})
  void f32WeightsGiveTheCpuLogitsWithin1e3(String name) throws Exception {
    CudaBackend backend = GpuFixture.backend();
    try (Model m = ModelLoader.load(model(name), Optional.empty())) {
      ModelWeights w = CpuGpuComparison.convert(m.weights(), DType.F32);
      int len = Math.min(m.config().contextLength(), 480);
      int seqs = (2100 + len - 1) / len;
      CpuGpuComparison.Result r =
          CpuGpuComparison.run(backend, m.config(), w, KvCacheType.F32, seqs, len, 42);
      report(name + " F32", r);
      assertThat(r.positions()).isGreaterThanOrEqualTo(2000);
      assertThat(r.maxAbsDiff()).isLessThanOrEqualTo(1e-3);
      // The decode steps ran as captured graphs (the comparison's steps include them).
      assertThat(r.graphLaunches()).isPositive();
      assertSamePerplexity(r);
    }
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "stories260K:F16",
        "stories260K:BF16",
        "tinystories-656k:BF16",
        "bundled:F16",
        "bundled:BF16"
      })
  void halfWeightsAgreeOnTop1(String spec) throws Exception {
    String name = spec.split(":")[0];
    DType type = DType.valueOf(spec.split(":")[1]);
    CudaBackend backend = GpuFixture.backend();
    try (Model m = ModelLoader.load(model(name), Optional.empty())) {
      ModelWeights w = CpuGpuComparison.convert(m.weights(), type);
      int len = Math.min(m.config().contextLength(), 480);
      int seqs = (2100 + len - 1) / len;
      CpuGpuComparison.Result r =
          CpuGpuComparison.run(backend, m.config(), w, KvCacheType.F16, seqs, len, 7);
      report(spec + " (F16 KV)", r);
      assertThat(r.positions()).isGreaterThanOrEqualTo(2000);
      assertThat(r.agreementExcludingNearTies()).isGreaterThanOrEqualTo(0.999);
    }
  }

  @Test
  void stories260KGreedyOnTheDeviceGivesTheGoldenIds() throws Exception {
    CudaBackend backend = GpuFixture.backend();
    try (Model m = ModelLoader.load(model("stories260K"), Optional.empty());
        CudaTransformer gpu = backend.load(m.config(), m.weights())) {
      var c = m.config();
      KvCacheManager kv =
          new KvCacheManager(
              new KvGeometry(c.layers(), c.kvHeads(), c.headSize()),
              new KvCacheConfig(KvCacheType.F32, 16, 8L << 20, EvictionPolicyKind.TINY_LFU, false),
              backend.kvStorage());
      int[] golden = SharedModels.STORIES260K_GOLDEN;
      int[] prompt = {1};
      int seq = kv.open(kv.findCachedPrefix(prompt, 1, "g"), 1);
      int token = 1;
      int[] got = new int[golden.length];
      for (int i = 0; i < golden.length; i++) {
        assertThat(kv.grow(seq, i + 1)).isTrue();
        int[] ids =
            gpu.forwardAndSample(
                Batch.ofSequence(seq, i, token),
                kv.store(),
                new DeviceSampling[] {DeviceSampling.greedy()});
        token = ids[0];
        got[i] = token;
      }
      assertThat(got).containsExactly(golden);
    }
  }

  @Test
  void aBatchGivesTheLogitsEachSequenceGivesAlone() throws Exception {
    CudaBackend backend = GpuFixture.backend();
    try (Model m = ModelLoader.load(model("bundled"), Optional.empty());
        CudaTransformer gpu = backend.load(m.config(), m.weights())) {
      var c = m.config();
      KvGeometry g = new KvGeometry(c.layers(), c.kvHeads(), c.headSize());
      int n = 6;
      int[][] prompts = new int[n][];
      java.util.SplittableRandom rnd = new java.util.SplittableRandom(3);
      for (int s = 0; s < n; s++) {
        prompts[s] = rnd.ints(5 + 13 * s, 0, c.vocabSize()).toArray();
      }
      float[][] alone = new float[n][];
      for (int s = 0; s < n; s++) {
        KvCacheManager kv = newKv(backend, g);
        int seq =
            kv.open(kv.findCachedPrefix(prompts[s], prompts[s].length, "a"), prompts[s].length);
        alone[s] = gpu.forward(Batch.ofSequence(seq, 0, prompts[s]), kv.store());
      }
      KvCacheManager kv = newKv(backend, g);
      List<Integer> tok = new ArrayList<>();
      List<Integer> pos = new ArrayList<>();
      List<Integer> seqs = new ArrayList<>();
      int[] last = new int[n];
      for (int s = 0; s < n; s++) {
        int seq =
            kv.open(kv.findCachedPrefix(prompts[s], prompts[s].length, "b" + s), prompts[s].length);
        for (int i = 0; i < prompts[s].length; i++) {
          tok.add(prompts[s][i]);
          pos.add(i);
          seqs.add(seq);
        }
        last[s] = tok.size() - 1;
      }
      float[] batched =
          gpu.forward(
              new Batch(
                  tok.stream().mapToInt(i -> i).toArray(),
                  pos.stream().mapToInt(i -> i).toArray(),
                  seqs.stream().mapToInt(i -> i).toArray(),
                  last),
              kv.store());
      int v = c.vocabSize();
      for (int s = 0; s < n; s++) {
        for (int i = 0; i < v; i++) {
          // Not bitwise: another row count picks another product (one logit row runs on mgemv
          // with F32 activations, six on cuBLASLt with F16-rounded ones) and summation order;
          // F16 weights, F32 accumulation.
          assertThat((double) batched[s * v + i])
              .isCloseTo(alone[s][i], org.assertj.core.data.Offset.offset(5e-3));
        }
      }
    }
  }

  /**
   * Programmatic dependent launch changes when grids start, never what they compute: a batched
   * prefill of three sequences (tiled attention) and four decode steps (fused, graphed) give the
   * same logits bit for bit with overlapped launches on and off. A kernel that touched memory
   * before waiting for its predecessor would race and differ.
   */
  @Test
  void overlappedLaunchGivesTheSameLogitsBitForBit() throws Exception {
    CudaBackend backend = GpuFixture.backend();
    org.junit.jupiter.api.Assumptions.assumeTrue(backend.device().supportsOverlappedLaunch());
    boolean was = backend.kernels().overlappedLaunch();
    try (Model m = ModelLoader.load(model("bundled"), Optional.empty())) {
      float[][] runs = new float[2][];
      for (int mode = 0; mode < 2; mode++) {
        backend.kernels().setOverlappedLaunch(mode == 1);
        try (CudaTransformer gpu = backend.load(m.config(), m.weights())) {
          runs[mode] = prefillAndDecode(backend, gpu, m.config());
        }
      }
      assertThat(runs[1]).containsExactly(runs[0]);
    } finally {
      backend.kernels().setOverlappedLaunch(was);
    }
  }

  /** Every logit of a 3-sequence batched prefill and four decode steps, concatenated. */
  private static float[] prefillAndDecode(
      CudaBackend backend, CudaTransformer gpu, io.kvant.engine.model.LlamaConfig c) {
    KvCacheManager kv = newKv(backend, new KvGeometry(c.layers(), c.kvHeads(), c.headSize()));
    int[] lengths = {20, 37, 5};
    java.util.SplittableRandom rnd = new java.util.SplittableRandom(5);
    int total = 0;
    for (int len : lengths) {
      total += len;
    }
    int[] tok = new int[total];
    int[] pos = new int[total];
    int[] sq = new int[total];
    int[] seqs = new int[lengths.length];
    int[] last = new int[lengths.length];
    int r = 0;
    for (int s = 0; s < lengths.length; s++) {
      int[] prompt = rnd.ints(lengths[s], 0, c.vocabSize()).toArray();
      seqs[s] = kv.open(kv.findCachedPrefix(prompt, prompt.length, "p" + s), prompt.length);
      for (int i = 0; i < lengths[s]; i++, r++) {
        tok[r] = prompt[i];
        pos[r] = i;
        sq[r] = seqs[s];
      }
      last[s] = r - 1;
    }
    List<float[]> out = new ArrayList<>();
    out.add(gpu.forward(new Batch(tok, pos, sq, last), kv.store()));
    int[] all = new int[lengths.length];
    for (int s = 0; s < all.length; s++) {
      all[s] = s;
    }
    for (int step = 0; step < 4; step++) {
      int[] t = rnd.ints(lengths.length, 0, c.vocabSize()).toArray();
      int[] p = new int[lengths.length];
      for (int s = 0; s < lengths.length; s++) {
        p[s] = lengths[s] + step;
        kv.grow(seqs[s], p[s] + 1);
      }
      out.add(gpu.forward(new Batch(t, p, seqs.clone(), all), kv.store()));
    }
    int size = 0;
    for (float[] o : out) {
      size += o.length;
    }
    float[] flat = new float[size];
    int at = 0;
    for (float[] o : out) {
      System.arraycopy(o, 0, flat, at, o.length);
      at += o.length;
    }
    return flat;
  }

  private static KvCacheManager newKv(CudaBackend backend, KvGeometry g) {
    return new KvCacheManager(
        g,
        new KvCacheConfig(KvCacheType.F16, 16, 16L << 20, EvictionPolicyKind.TINY_LFU, false),
        backend.kvStorage());
  }

  /**
   * The host work between steps (the engine's host sampling) runs on the pool a version was given:
   * every index once, on the pool's threads, and a body's failure reaches the caller.
   */
  @Test
  void hostWorkBetweenStepsRunsEveryIndexOnceOnTheHostPool() throws Exception {
    CudaBackend backend = GpuFixture.backend();
    try (Model m = ModelLoader.load(model("stories260K"), Optional.empty());
        io.kvant.engine.tensor.ComputePool pool = new io.kvant.engine.tensor.ComputePool(4);
        CudaTransformer gpu = backend.load(m.config(), m.weights())) {
      for (io.kvant.engine.tensor.ComputePool p :
          new io.kvant.engine.tensor.ComputePool[] {null, pool}) {
        gpu.setHostPool(p);
        java.util.concurrent.atomic.AtomicIntegerArray seen =
            new java.util.concurrent.atomic.AtomicIntegerArray(257);
        java.util.Set<String> threads = java.util.concurrent.ConcurrentHashMap.newKeySet();
        gpu.forEachOnHost(
            257,
            i -> {
              seen.incrementAndGet(i);
              threads.add(Thread.currentThread().getName());
            });
        for (int i = 0; i < 257; i++) {
          assertThat(seen.get(i)).as("index %d", i).isEqualTo(1);
        }
        assertThat(threads)
            .allMatch(
                t ->
                    t.equals(Thread.currentThread().getName())
                        || (p != null && t.startsWith("kvant-compute-")));
        org.assertj.core.api.Assertions.assertThatThrownBy(
                () ->
                    gpu.forEachOnHost(
                        8,
                        i -> {
                          if (i == 5) {
                            throw new IllegalStateException("row 5");
                          }
                        }))
            .hasMessage("row 5");
      }
    }
  }

  @Test
  void aVersionThatChangesOneTensorUploadsExactlyThatTensor() throws Exception {
    CudaBackend backend = GpuFixture.backend();
    try (Model m = ModelLoader.load(model("bundled"), Optional.empty())) {
      ModelWeights base = m.weights();
      long before = backend.device().liveBytes();
      CudaTransformer v1 = backend.load(m.config(), base);
      long afterV1 = backend.device().liveBytes();
      // A delta version: layer 3's w_q replaced, everything else the same objects.
      List<LayerWeights> layers = new ArrayList<>(base.layers());
      LayerWeights l3 = layers.get(3);
      var newWq = CpuGpuComparison.encode(l3.wq(), l3.wq().dtype());
      layers.set(
          3,
          new LayerWeights(
              l3.attnNorm(),
              newWq,
              l3.wk(),
              l3.wv(),
              l3.wo(),
              l3.qBias(),
              l3.kBias(),
              l3.vBias(),
              l3.ffnNorm(),
              l3.wGate(),
              l3.wUp(),
              l3.wDown()));
      ModelWeights delta =
          new ModelWeights(base.embedding(), layers, base.outputNorm(), base.output());
      long weightsBefore = backend.device().liveBytes();
      CudaTransformer v2 = backend.load(m.config(), delta);
      long transformerScratch = 0;
      // v2's own non-weight buffers: its rope tables (cos + sin); scratch is allocated lazily.
      transformerScratch = 2L * 4 * m.config().contextLength() * (m.config().headSize() / 2);
      long grew = backend.device().liveBytes() - weightsBefore - transformerScratch;
      System.out.printf(
          "delta version: device memory grew by %d bytes for a %d-byte tensor (v1 took %d)%n",
          grew, newWq.byteSize(), afterV1 - before);
      assertThat(grew).isEqualTo(newWq.byteSize());
      v2.close();
      assertThat(backend.device().liveBytes()).isEqualTo(weightsBefore);
      v1.close();
      assertThat(backend.device().liveBytes()).isEqualTo(before);
    }
  }
}
