package io.kvant.quant.quantize;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

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
import io.kvant.engine.tensor.DType;
import io.kvant.engine.tensor.Tensor;
import io.kvant.engine.testing.SharedModels;
import io.kvant.quant.artifact.ArtifactException;
import io.kvant.quant.artifact.Manifest;
import io.kvant.quant.artifact.ModelOpener;
import io.kvant.quant.artifact.Qbom;
import io.kvant.quant.artifact.QbomEntry;
import io.kvant.quant.artifact.QuantizedArtifact;
import io.kvant.quant.encoding.AimetEncodings;
import io.kvant.quant.encoding.TensorEncoding;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** End-to-end quantization of stories260K: quality ordering, AWQ folding, artifact round trip. */
class QuantizerTest {
  private static final Instant T0 = Instant.parse("2025-01-02T03:04:05Z");
  private static Model model;
  private static ComputePool pool;
  private static Calibration calibration;
  private static Calibration heldOut;
  private static Evaluator evaluator;

  @BeforeAll
  static void load() throws IOException {
    model =
        ModelOpener.load(SharedModels.require("stories260K/stories260K.gguf"), Optional.empty());
    pool = new ComputePool(2);
    LlamaConfig c = model.config();
    calibration =
        Calibration.fromText(Calibration.builtinCalibrationText(), model.tokenizer(), 256);
    // A slice of the held-out text keeps the test fast.
    heldOut =
        Calibration.fromText(
            Calibration.builtinHeldOutText().substring(0, 3000), model.tokenizer(), 256);
    evaluator =
        new Evaluator(
            c, pool, () -> new ContiguousKvStore(c.layers(), c.kvHeads(), c.headSize(), 256, 1));
  }

  @AfterAll
  static void close() throws IOException {
    pool.close();
    model.close();
  }

  private static QuantizedModel quantize(String recipe) throws IOException {
    return new Quantizer(Clock.fixed(T0, ZoneOffset.UTC), "test")
        .run(model, Recipe.resolve(recipe), calibration);
  }

  private static Evaluator.Result eval(Model q) {
    return evaluator.compare(model.weights(), q.weights(), heldOut.sequences());
  }

  @Test
  void int8IsCloseAndActivationAwareInt4BeatsMinMax() throws IOException {
    Evaluator.Result w8 = eval(quantize("w8").model());
    assertThat(w8.top1Agreement()).isGreaterThan(0.98);
    assertThat(w8.meanKl()).isLessThan(2e-3);
    // INT8's few flips sit where the reference hesitates between two tokens.
    assertThat(w8.flipsNearTie()).isGreaterThan(0.5);
    assertThat(w8.nearTies()).isLessThan(0.1);
    assertThat(w8.top1AgreementExcludingTies()).isGreaterThan(w8.top1Agreement());
    Evaluator.Result minmax = eval(quantize("w4g32:minmax").model());
    Evaluator.Result awq = eval(quantize("w4g32:awq").model());
    Evaluator.Result mse = eval(quantize("w4g32").model());
    assertThat(awq.meanKl()).isLessThan(minmax.meanKl() * 0.9);
    assertThat(mse.meanKl()).isLessThan(minmax.meanKl());
    assertThat(w8.meanKl()).isLessThan(mse.meanKl());
  }

  @Test
  void gptqLowersTheOutputErrorOfRoundToNearest() throws IOException {
    QuantizedModel w8 = quantize("w8:gptq");
    assertThat(eval(w8.model()).meanKl()).isLessThan(eval(quantize("w8").model()).meanKl());
    QuantizedModel w4 = quantize("w4g32:gptq");
    assertThat(eval(w4.model()).meanKl())
        .isLessThan(0.9 * eval(quantize("w4g32").model()).meanKl());
    // Every linear layer and lm_head went through GPTQ; embeddings have no input and stay f32.
    assertThat(w4.qbom().stream().filter(e -> e.method().equals("gptq")).count())
        .isEqualTo(5 * 7 + 1);
    assertThat(w4.encodings()).containsKey(TensorNames.OUTPUT);
  }

  @Test
  void quantizingTheMatricesOfALayerSideBySideGivesTheSameModel() throws IOException {
    for (String recipe : new String[] {"fp8", "w4g32:awq", "w4g32:gptq", "q4_0"}) {
      QuantizedModel one = quantize(recipe);
      QuantizedModel four =
          new Quantizer(Clock.fixed(T0, ZoneOffset.UTC), "test", 4)
              .run(model, Recipe.resolve(recipe), calibration);
      assertThat(four.qbom()).as(recipe).isEqualTo(one.qbom());
      assertThat(four.encodings().keySet()).as(recipe).isEqualTo(one.encodings().keySet());
      one.encodings()
          .forEach(
              (name, e) -> {
                TensorEncoding f = four.encodings().get(name);
                assertThat(f.scale()).as("%s %s", recipe, name).containsExactly(e.scale());
                assertThat(f.offset()).as("%s %s", recipe, name).containsExactly(e.offset());
              });
      for (int l = 0; l < model.config().layers(); l++) {
        LayerWeights a = one.model().weights().layers().get(l);
        LayerWeights b = four.model().weights().layers().get(l);
        for (Tensor[] pair :
            new Tensor[][] {
              {a.wq(), b.wq()},
              {a.wk(), b.wk()},
              {a.wv(), b.wv()},
              {a.wo(), b.wo()},
              {a.wGate(), b.wGate()},
              {a.wUp(), b.wUp()},
              {a.wDown(), b.wDown()}
            }) {
          assertThat(pair[1].dtype()).isEqualTo(pair[0].dtype());
          assertThat(WeightQuantizer.dequantize(pair[1]))
              .as("%s layer %d", recipe, l)
              .containsExactly(WeightQuantizer.dequantize(pair[0]));
        }
        assertThat(b.attnNorm()).containsExactly(a.attnNorm());
      }
    }
    assertThatThrownBy(() -> new Quantizer(Clock.systemUTC(), "t", 0))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("threads");
  }

  @Test
  void awqFoldsScalesIntoTheNorms() throws IOException {
    QuantizedModel q = quantize("w4g32:awq");
    LayerWeights src = model.weights().layers().get(0);
    LayerWeights dst = q.model().weights().layers().get(0);
    assertThat(dst.attnNorm()).isNotEqualTo(src.attnNorm());
    assertThat(dst.wq().dtype()).isEqualTo(DType.I4);
    assertThat(q.time()).isEqualTo(T0);
    assertThat(q.qbom())
        .allSatisfy(e -> assertThat(e.origin()).isEqualTo(QbomEntry.Origin.QUANTIZED));
    assertThat(q.qbom().stream().filter(e -> e.method().equals("awq")).count()).isEqualTo(5 * 7);
    assertThatThrownBy(
            () ->
                new Quantizer(Clock.systemUTC(), "t")
                    .run(model, Recipe.resolve("w4g32:awq"), Calibration.NONE))
        .hasMessageContaining("needs calibration");
  }

  @Test
  void artifactRoundTripsWithVerifiedDigests(@TempDir Path dir) throws IOException {
    QuantizedModel q = quantize("mixed");
    Manifest m =
        QuantizedArtifact.write(
            q.contents(), dir, new QuantizedArtifact.Info("stories260K", "v1", null, "test", T0));
    assertThat(m.files())
        .extracting(Manifest.FileEntry::path)
        .contains("model.safetensors", "encodings.json", "qbom.json");
    assertThat(Manifest.read(dir)).isEqualTo(m);
    assertThat(Qbom.parse(Files.readString(dir.resolve("qbom.json"))).entries())
        .hasSize(q.qbom().size());
    try (Model loaded = ModelOpener.load(dir, Optional.empty())) {
      assertThat(logits(loaded.weights())).isEqualTo(logits(q.model().weights()));
      assertThat(loaded.tokenizer().encode("Once upon a time", true))
          .isEqualTo(model.tokenizer().encode("Once upon a time", true));
      // The AIMET encodings applied to the source weights give the stored tensors, bit for bit.
      Map<String, Tensor> stored =
          Map.of(
              TensorNames.matrix(2, Role.GATE),
              loaded.weights().layers().get(2).wGate(),
              TensorNames.matrix(4, Role.DOWN),
              loaded.weights().layers().get(4).wDown(),
              TensorNames.OUTPUT,
              loaded.weights().output());
      Map<String, TensorEncoding> enc =
          AimetEncodings.read(Files.readString(dir.resolve("encodings.json")), name -> shape(name));
      for (var e : stored.entrySet()) {
        Tensor applied =
            WeightQuantizer.apply(
                WeightQuantizer.dequantize(source(e.getKey())), enc.get(e.getKey()));
        assertThat(WeightQuantizer.dequantize(applied))
            .as(e.getKey())
            .isEqualTo(WeightQuantizer.dequantize(e.getValue()));
      }
    }
    // Tampering with a byte is caught before anything is mapped.
    Path st = dir.resolve("model.safetensors");
    byte[] bytes = Files.readAllBytes(st);
    bytes[bytes.length - 1] ^= 1;
    Files.write(st, bytes);
    assertThatThrownBy(() -> ModelOpener.load(dir, Optional.empty()))
        .isInstanceOf(ArtifactException.class)
        .hasMessageContaining("sha256 of 'model.safetensors'");
  }

  private static int[] shape(String name) {
    Tensor t = source(name);
    return t == null ? null : new int[] {t.rows(), t.cols()};
  }

  private static Tensor source(String name) {
    ModelWeights w = model.weights();
    if (name.equals(TensorNames.OUTPUT)) {
      return w.output();
    }
    for (int l = 0; l < w.layers().size(); l++) {
      for (Role r : new Role[] {Role.Q, Role.K, Role.V, Role.O, Role.GATE, Role.UP, Role.DOWN}) {
        if (name.equals(TensorNames.matrix(l, r))) {
          return Sensitivity.get(w.layers().get(l), r);
        }
      }
    }
    return null;
  }

  private static float[] logits(ModelWeights w) {
    LlamaConfig c = model.config();
    Transformer t = new Transformer(c, w, pool);
    int[] ids = model.tokenizer().encode("Once upon a time there was a cat", true);
    return t.forward(
        Batch.ofSequence(0, 0, ids),
        new ContiguousKvStore(c.layers(), c.kvHeads(), c.headSize(), 64, 1));
  }

  @Test
  void sensitivityRanksTensors() {
    var rows =
        new Sensitivity(pool, evaluator)
            .rows(
                model,
                Recipe.builtin("w4g128"),
                calibration,
                new Calibration(heldOut.sequences().subList(0, 1), "x"));
    assertThat(rows).hasSize(5 * 7 + 1);
    assertThat(rows.get(0).meanKl()).isGreaterThanOrEqualTo(rows.get(rows.size() - 1).meanKl());
  }
}
