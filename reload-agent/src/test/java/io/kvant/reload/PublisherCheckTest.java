package io.kvant.reload;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kvant.engine.format.safetensors.SafetensorsDtype;
import io.kvant.engine.format.safetensors.SafetensorsFile;
import io.kvant.engine.format.safetensors.SafetensorsReader;
import io.kvant.engine.format.safetensors.SafetensorsTensor;
import io.kvant.engine.format.safetensors.SafetensorsWriter;
import io.kvant.engine.model.Model;
import io.kvant.engine.model.Weight;
import io.kvant.engine.tensor.DType;
import io.kvant.engine.tensor.Tensor;
import io.kvant.quant.artifact.KvCalibrationFile;
import io.kvant.quant.artifact.ModelOpener;
import io.kvant.quant.artifact.QuantizedArtifact;
import io.kvant.quant.encoding.AimetEncodings;
import io.kvant.quant.encoding.TensorEncoding;
import io.kvant.quant.quantize.Calibration;
import io.kvant.quant.quantize.KvCalibration;
import io.kvant.quant.quantize.Method;
import io.kvant.quant.quantize.QuantSpec;
import io.kvant.quant.quantize.QuantizedModel;
import io.kvant.quant.quantize.Quantizer;
import io.kvant.quant.quantize.Recipe;
import io.kvant.quant.quantize.WeightQuantizer;
import io.kvant.reload.bucket.FileBucket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code publish} runs the server's verification first: a version a server's agent refuses is
 * refused at publish with the same reason and message, and leaves nothing in the bucket; a good one
 * is uploaded and reports what the server will find (unchanged tensors recognised by digest).
 */
class PublisherCheckTest {
  static final String Q0 = "blk.0.attn_q.weight";
  static final String NORM = "blk.0.attn_norm.weight";

  @TempDir Path tmp;
  Fixture fx;
  FileBucket bucket;
  FileBucket planted;
  Publisher checked;
  ReloadAgent server;

  @BeforeEach
  void setUp() throws Exception {
    fx = new Fixture(tmp);
    bucket = new FileBucket(tmp.resolve("bucket"));
    // A server refuses to start on a bucket that does not exist (issue 17, item 2).
    planted = new FileBucket(Files.createDirectories(tmp.resolve("planted")));
    ServingView base =
        new ServingView(
            "base", "none", fx.model.config(), fx.model.tokenizer(), fx.model.weights());
    checked =
        new Publisher(
            bucket, fx.clock, new VersionCheck(base, fx.pool, tmp.resolve("w"), fx.clock));
    // The agent a server runs, over a bucket where the same versions are planted unverified.
    server = fx.agent(planted, fx.settings());
  }

  @AfterEach
  void tearDown() throws Exception {
    server.close();
    fx.close();
  }

  @Test
  void republishingTheServedModelFindsNoTensorChanged() throws Exception {
    Path dir = folder("same");
    Publisher.writeTensors(dir.resolve("model.safetensors"), fx.tensors());
    Publisher.Published p =
        checked.publish(Fixture.MODEL, "v1", Optional.empty(), "none", "t", dir, Optional.empty());
    assertThat(p.verified().orElseThrow().changed()).isZero();
    assertThat(p.manifest().tensors()).hasSize(fx.tensors().size());
    assertThat(bucket.stat("stories/versions/v1/manifest.json")).isPresent();

    // One tensor changed is counted as one.
    Map<String, Weight> t = fx.tensors();
    t.put(Q0, Fixture.scaled(Fixture.tensor(t.get(Q0)), 1.5f));
    Path dir2 = folder("one");
    Publisher.writeTensors(dir2.resolve("model.safetensors"), t);
    assertThat(
            checked
                .publish(Fixture.MODEL, "v2", Optional.empty(), "w8", "t", dir2, Optional.empty())
                .verified()
                .orElseThrow())
        .satisfies(v -> assertThat(v.changed()).isEqualTo(1))
        .satisfies(v -> assertThat(v.recalibrated()).isPositive());
  }

  @Test
  void aDeltaWithNewEncodingsOnlyIsCheckedAgainstItsParentInTheBucket() throws Exception {
    Path dir = folder("full");
    Publisher.writeTensors(dir.resolve("model.safetensors"), fx.tensors());
    checked.publish(Fixture.MODEL, "v1", Optional.empty(), "w8", "t", dir, Optional.empty());
    Tensor q = fx.matrix(Q0);
    TensorEncoding enc =
        WeightQuantizer.chooseEncoding(
            Q0,
            TensorData.values(q),
            q.rows(),
            q.cols(),
            QuantSpec.int4(32, true, Method.MINMAX),
            null);
    Path delta = folder("enc");
    Files.writeString(delta.resolve(Publisher.ENCODINGS), AimetEncodings.write(Map.of(Q0, enc)));
    StagedVersion v =
        checked
            .publish(Fixture.MODEL, "v2", Optional.of("v1"), "w8", "t", delta, Optional.empty())
            .verified()
            .orElseThrow();
    // No tensor changed, none re-quantized by the recipe: the 4-bit codes come from the encodings.
    assertThat(v.changed()).isZero();
    assertThat(v.recalibrated()).isZero();
    assertThat(v.weights().layers().get(0).wq().dtype()).isEqualTo(DType.I4);
    assertThat(v.weights().layers().get(1).wq().dtype()).isEqualTo(DType.I8);
  }

  @Test
  void refusesAnUnknownRecipeAsTheServerDoes() throws Exception {
    Path dir = folder("w4");
    Publisher.writeTensors(dir.resolve("model.safetensors"), fx.tensors());
    refusedLikeTheServer("w4", dir, "w4", Optional.empty(), Rejection.Reason.UNKNOWN_RECIPE);
  }

  @Test
  void refusesPreQuantizedTensorsAsTheServerDoes() throws Exception {
    Tensor q = fx.matrix(Q0);
    Path dir = folder("i8");
    new SafetensorsWriter()
        .add(
            Q0, SafetensorsDtype.I8, new long[] {q.rows(), q.cols()}, new byte[q.rows() * q.cols()])
        .write(dir.resolve("model.safetensors"));
    publishBase();
    refusedLikeTheServer("i8", dir, "w8", Optional.of("v1"), null);
  }

  @Test
  void refusesNonFiniteValuesWrongShapesUnknownTensorsAndBadEncodings() throws Exception {
    publishBase();
    float[] nan = fx.vector(NORM).clone();
    nan[3] = Float.NaN;
    Path a = folder("nan");
    Publisher.writeTensors(a.resolve("model.safetensors"), Map.of(NORM, new Weight.Vector(nan)));
    refusedLikeTheServer("nan", a, "w8", Optional.of("v1"), Rejection.Reason.NON_FINITE);

    Path b = folder("shape");
    Publisher.writeTensors(
        b.resolve("model.safetensors"), Map.of(NORM, new Weight.Vector(new float[7])));
    refusedLikeTheServer("shape", b, "w8", Optional.of("v1"), Rejection.Reason.SHAPE_MISMATCH);

    Path c = folder("unknown");
    Publisher.writeTensors(
        c.resolve("model.safetensors"), Map.of("blk.99.attn_q.weight", new Weight.Vector(nan)));
    refusedLikeTheServer("unknown", c, "w8", Optional.of("v1"), Rejection.Reason.BAD_TENSOR);

    Tensor q = fx.matrix(Q0);
    TensorEncoding wrong =
        WeightQuantizer.chooseEncoding(
            "blk.0.ffn_up.weight",
            TensorData.values(q),
            q.rows(),
            q.cols(),
            QuantSpec.int8(Method.MINMAX),
            null);
    Path d = folder("enc");
    Files.writeString(
        d.resolve(Publisher.ENCODINGS), AimetEncodings.write(Map.of("blk.0.ffn_up.weight", wrong)));
    refusedLikeTheServer("enc", d, "w8", Optional.of("v1"), Rejection.Reason.BAD_ENCODINGS);

    Path e = folder("orphan");
    Publisher.writeTensors(e.resolve("model.safetensors"), Map.of(NORM, new Weight.Vector(nan)));
    refusedLikeTheServer("orphan", e, "w8", Optional.of("ghost"), Rejection.Reason.MISSING_PARENT);
  }

  @Test
  void aQuantizeFolderIsUploadedAsItIsAndServedAsItsOwnCodes() throws Exception {
    Path q = quantizeFolder("q");
    StagedVersion v =
        checked
            .publish(Fixture.MODEL, "q1", Optional.empty(), "none", "t", q, Optional.empty())
            .verified()
            .orElseThrow();
    assertThat(v.recalibrated()).isZero();
    assertThat(Files.mismatch(q.resolve("model.safetensors"), bucketFile("q1/model.safetensors")))
        .isEqualTo(-1L);
    try (Model folder = ModelOpener.load(q, Optional.empty())) {
      Tensor want = folder.weights().layers().get(0).wq();
      Tensor got = v.weights().layers().get(0).wq();
      assertThat(got.dtype()).isEqualTo(DType.I8);
      assertThat(TensorData.values(got)).isEqualTo(TensorData.values(want));
    }
    // The server's agent, given the same folder, serves the same codes.
    Publisher.unverified(planted, fx.clock)
        .publish(Fixture.MODEL, "q1", Optional.empty(), "none", "t", q, Optional.empty());
    StagedVersion atServer = server.swapTo("q1", SwapMode.DRAIN, false);
    assertThat(TensorData.values(atServer.weights().layers().get(1).wDown()))
        .isEqualTo(TensorData.values(v.weights().layers().get(1).wDown()));
    assertThat(fx.target.serving.id()).isEqualTo("q1");
  }

  @Test
  void aQuantizeFolderChangedAfterItsManifestIsNotPublished() throws Exception {
    Path q = quantizeFolder("changed");
    Files.writeString(q.resolve("config.json"), "{}");
    assertThatThrownBy(
            () ->
                checked.publish(
                    Fixture.MODEL, "q1", Optional.empty(), "none", "t", q, Optional.empty()))
        .hasMessageContaining("config.json");
    assertThat(bucket.list("stories/versions/q1/", 10)).isEmpty();
  }

  @Test
  void refusesAPreQuantizedTensorWithANonFiniteScaleAsTheServerDoes() throws Exception {
    Path q = quantizeFolder("nanscale");
    // The folder rewritten with a NaN scale in attn_q of layer 0, its manifest dropped (a folder
    // without one is digested as it is).
    Path file = q.resolve("model.safetensors");
    SafetensorsWriter w = new SafetensorsWriter();
    try (SafetensorsFile sf = SafetensorsReader.open(file)) {
      sf.metadata().forEach(w::metadata);
      for (SafetensorsTensor t : sf.tensors()) {
        byte[] b = sf.tensorData(t.name()).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
        if (t.name().equals(Q0 + ".scale")) {
          java.nio.ByteBuffer.wrap(b)
              .order(java.nio.ByteOrder.LITTLE_ENDIAN)
              .putFloat(4, Float.NaN);
        }
        w.add(t.name(), t.dtype(), t.shape(), b);
      }
    }
    w.write(file);
    Files.delete(q.resolve("manifest.json"));
    refusedLikeTheServer("nanscale", q, "none", Optional.empty(), Rejection.Reason.NON_FINITE);
  }

  @Test
  void aQuantizeFolderCarriesItsKvCalibrationThroughTheCheck() throws Exception {
    Path q = quantizeFolder("kv", true);
    assertThat(q.resolve(KvCalibrationFile.FILE_NAME)).isRegularFile();
    checked.publish(Fixture.MODEL, "kv1", Optional.empty(), "none", "t", q, Optional.empty());
    assertThat(
            Files.mismatch(
                q.resolve(KvCalibrationFile.FILE_NAME),
                bucketFile("kv1/" + KvCalibrationFile.FILE_NAME)))
        .isEqualTo(-1L);
    // The server's agent takes it too (and serves no weights from it).
    Publisher.unverified(planted, fx.clock)
        .publish(Fixture.MODEL, "kv1", Optional.empty(), "none", "t", q, Optional.empty());
    server.swapTo("kv1", SwapMode.DRAIN, false);
    assertThat(fx.target.serving.id()).isEqualTo("kv1");
  }

  @Test
  void refusesAKvCalibrationFileForAnotherGeometryAsTheServerDoes() throws Exception {
    Path q = quantizeFolder("kvbad", true);
    new SafetensorsWriter()
        .metadata(
            KvCalibrationFile.METADATA_KEY,
            "{\"schema\":1,\"rope_theta\":10000.0,\"rope_style\":\"ADJACENT_PAIRS\","
                + "\"calibration_text\":\"t\",\"calibration_tokens\":1}")
        .add(KvCalibrationFile.KEY_AMAX, SafetensorsDtype.F32, new long[] {1, 1, 2}, new byte[8])
        .write(q.resolve(KvCalibrationFile.FILE_NAME));
    Files.delete(q.resolve("manifest.json"));
    refusedLikeTheServer("kvbad", q, "none", Optional.empty(), Rejection.Reason.BAD_TENSOR);
  }

  /** What {@code kvant quantize --recipe w8 --no-kv-calibration} writes for the fixture's model. */
  private Path quantizeFolder(String name) throws Exception {
    return quantizeFolder(name, false);
  }

  /** What {@code kvant quantize --recipe w8} writes, with its KV statistics when {@code kv}. */
  private Path quantizeFolder(String name, boolean kv) throws Exception {
    Calibration cal =
        Calibration.fromText(Calibration.builtinCalibrationText(), fx.model.tokenizer(), 64);
    QuantizedModel qm = new Quantizer(fx.clock, "t").run(fx.model, Recipe.resolve("w8"), cal);
    Path dir = folder(name);
    Optional<KvCalibrationFile.Contents> stats = Optional.empty();
    if (kv) {
      KvCalibration.Measured m = KvCalibration.builtin(fx.model, fx.pool);
      stats =
          Optional.of(
              new KvCalibrationFile.Contents(
                  m.scales(),
                  new KvCalibrationFile.Source(KvCalibration.BUILTIN_TEXT, m.tokens())));
    }
    QuantizedArtifact.write(
        qm.contents(),
        dir,
        new QuantizedArtifact.Info(Fixture.MODEL, name, null, "t", fx.clock.instant()),
        stats);
    return dir;
  }

  private Path bucketFile(String rel) {
    return tmp.resolve("bucket/stories/versions/" + rel);
  }

  /** The base version v1 in both buckets (a delta's parent). */
  private void publishBase() throws Exception {
    Path dir = folder("base");
    Publisher.writeTensors(dir.resolve("model.safetensors"), fx.tensors());
    checked.publish(Fixture.MODEL, "v1", Optional.empty(), "w8", "t", dir, Optional.empty());
    Publisher.unverified(planted, fx.clock)
        .publish(Fixture.MODEL, "v1", Optional.empty(), "w8", "t", dir, Optional.empty());
  }

  /**
   * Publishing {@code dir} as {@code version} is refused with {@code reason} (when given) and
   * leaves nothing in the bucket; the same folder planted unverified is refused by the server's
   * agent with the same reason and message.
   */
  private void refusedLikeTheServer(
      String version, Path dir, String recipe, Optional<String> parent, Rejection.Reason reason)
      throws Exception {
    Rejection atPublish =
        (Rejection)
            org.assertj.core.api.Assertions.catchThrowable(
                () ->
                    checked.publish(
                        Fixture.MODEL, version, parent, recipe, "t", dir, Optional.empty()));
    assertThat(atPublish).as(version).isNotNull();
    if (reason != null) {
      assertThat(atPublish.reason()).as(version + ": " + atPublish.getMessage()).isEqualTo(reason);
    }
    assertThat(bucket.list("stories/versions/" + version + "/", 10)).as(version).isEmpty();

    Publisher.unverified(planted, fx.clock)
        .publish(Fixture.MODEL, version, parent, recipe, "t", dir, Optional.empty());
    assertThatThrownBy(() -> server.swapTo(version, SwapMode.DRAIN, false))
        .isInstanceOf(Rejection.class)
        .satisfies(
            e -> {
              Rejection atServer = (Rejection) e;
              assertThat(atServer.reason()).as(version).isEqualTo(atPublish.reason());
              assertThat(atServer.getMessage()).as(version).isEqualTo(atPublish.getMessage());
            });
  }

  private Path folder(String name) throws Exception {
    return Files.createDirectories(tmp.resolve("src-" + name));
  }
}
