package io.kvant.reload;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.engine.model.ModelWeights;
import io.kvant.engine.model.Weight;
import io.kvant.engine.model.WeightLayout;
import io.kvant.engine.tensor.Tensor;
import io.kvant.quant.artifact.QbomEntry;
import io.kvant.quant.encoding.AimetEncodings;
import io.kvant.quant.encoding.TensorEncoding;
import io.kvant.quant.quantize.Method;
import io.kvant.quant.quantize.QuantSpec;
import io.kvant.quant.quantize.WeightQuantizer;
import io.kvant.reload.bucket.FileBucket;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The agent over a folder bucket: incremental recalibration, copy-on-write, every rejection. */
class AgentFolderTest {
  static final String Q0 = "blk.0.attn_q.weight";

  @TempDir Path tmp;
  Fixture fx;
  FileBucket bucket;
  ReloadAgent agent;

  @BeforeEach
  void setUp() throws Exception {
    fx = new Fixture(tmp);
    bucket = new FileBucket(Files.createDirectories(tmp.resolve("bucket")));
    agent = fx.agent(bucket, fx.settings());
  }

  @AfterEach
  void tearDown() throws Exception {
    agent.close();
    fx.close();
  }

  private void publishV1() throws Exception {
    fx.publish(bucket, "v1", Optional.empty(), "w8", fx.tensors());
    assertThat(timedPoll("v1 (full)")).contains("v1");
  }

  /** One poll, its wall time printed (manifest-to-serving figures for perf/RESULTS.md). */
  private Optional<String> timedPoll(String what) {
    long t = System.nanoTime();
    Optional<String> r = agent.pollOnce();
    System.out.printf(
        "PIPELINE %s manifest-to-serving %.1f ms%n", what, (System.nanoTime() - t) / 1e6);
    return r;
  }

  @Test
  void aFullVersionThenAOneTensorDeltaRecalibratesExactlyThatTensor() throws Exception {
    publishV1();
    // w8 quantizes the 7 matrices of every layer and the output head (not the embedding).
    int layers = fx.model.config().layers();
    int head = fx.model.weights().output() == fx.model.weights().embedding() ? 0 : 1;
    assertThat(fx.of(Step.RECALIBRATED).getLast().attrs())
        .containsEntry("recalibrated_tensors", Integer.toString(7 * layers + head))
        .containsEntry("recipe_changed", "true");
    ModelWeights v1 = fx.target.serving.weights();

    Map<String, Weight> delta = new LinkedHashMap<>();
    delta.put(Q0, Fixture.scaled(fx.matrix(Q0), 1.05f));
    fx.publish(bucket, "v2", Optional.of("v1"), "w8", delta);
    assertThat(timedPoll("v2 (1-tensor delta)")).contains("v2");

    assertThat(fx.target.serving.id()).isEqualTo("v2");
    assertThat(fx.of(Step.RECALIBRATED).getLast().attrs())
        .containsEntry("recalibrated_tensors", "1")
        .containsEntry("changed_tensors", "1")
        .containsEntry("tensors", Q0);
    ModelWeights v2 = fx.target.serving.weights();
    // A weight is shared when it holds the same object (Weight's equality).
    WeightLayout slots = WeightLayout.of(fx.model.config(), v1);
    Map<String, Weight> a = slots.named(v1);
    Map<String, Weight> b = slots.named(v2);
    for (String name : a.keySet()) {
      if (name.equals(Q0)) {
        assertThat(b.get(name)).isNotEqualTo(a.get(name));
      } else {
        assertThat(b.get(name)).as(name).isEqualTo(a.get(name));
      }
    }
    assertThat(v2.layers().get(0).wq().dtype().name()).isNotEqualTo("F32");
    // A QBOM record for each swap, the delta's tensors inherited but one.
    assertThat(agent.qbom()).hasSize(2);
    var record = agent.qbom().getLast();
    assertThat(record.entries().stream().filter(e -> e.origin() == QbomEntry.Origin.RECALIBRATED))
        .singleElement()
        .satisfies(e -> assertThat(e.tensor()).isEqualTo(Q0));
    assertThat(Files.readAllLines(tmp.resolve("qbom/qbom.jsonl"))).hasSize(2);
  }

  @Test
  void aFullVersionWithUnchangedTensorsSharesThemWithTheServingVersion() throws Exception {
    Map<String, Weight> t = fx.tensors();
    t.put(Q0, Fixture.scaled(Fixture.tensor(t.get(Q0)), 0.5f));
    fx.publish(bucket, "v1", Optional.empty(), "none", t);
    assertThat(agent.pollOnce()).contains("v1");
    assertThat(fx.of(Step.RECALIBRATED).getLast().attrs())
        .containsEntry("changed_tensors", "1")
        .containsEntry("recalibrated_tensors", "0");
    WeightLayout layout = WeightLayout.of(fx.model);
    java.util.Set<Weight> base = new java.util.HashSet<>(layout.named(fx.model.weights()).values());
    long shared =
        layout.named(fx.target.serving.weights()).values().stream().filter(base::contains).count();
    assertThat(shared).isEqualTo(base.size() - 1);
  }

  @Test
  void encodingsFromTheBucketAreUsedAsTheyAre() throws Exception {
    publishV1();
    Tensor q = Fixture.scaled(fx.matrix(Q0), 1.1f).tensor();
    TensorEncoding enc =
        WeightQuantizer.chooseEncoding(
            Q0, TensorData.values(q), q.rows(), q.cols(), QuantSpec.int8(Method.MINMAX), null);
    fx.publish(
        bucket,
        "v2",
        Optional.of("v1"),
        "w8",
        Map.of(Q0, new Weight.Matrix(q)),
        Map.of(Publisher.ENCODINGS, AimetEncodings.write(Map.of(Q0, enc))));
    assertThat(agent.pollOnce()).contains("v2");
    assertThat(fx.of(Step.RECALIBRATED).getLast().attrs())
        .containsEntry("recalibrated_tensors", "0")
        .containsEntry("encodings_applied", "1");
    assertThat(agent.qbom().getLast().entries())
        .filteredOn(e -> e.tensor().equals(Q0))
        .singleElement()
        .satisfies(e -> assertThat(e.origin()).isEqualTo(QbomEntry.Origin.ENCODINGS));
  }

  @Test
  void rejectsEncodingsThatDoNotFitTheirTensors() throws Exception {
    publishV1();
    Tensor q = fx.matrix(Q0);
    // Scales for a 64-row matrix, given to ffn_up, which has 172 rows.
    TensorEncoding wrong =
        WeightQuantizer.chooseEncoding(
            "blk.0.ffn_up.weight",
            TensorData.values(q),
            q.rows(),
            q.cols(),
            QuantSpec.int8(Method.MINMAX),
            null);
    fx.publish(
        bucket,
        "v2",
        Optional.of("v1"),
        "w8",
        Map.of(Q0, Fixture.scaled(q, 1.1f)),
        Map.of(Publisher.ENCODINGS, AimetEncodings.write(Map.of("blk.0.ffn_up.weight", wrong))));
    agent.pollOnce();
    assertRejected("v2", "bad_encodings", "ffn_up");
  }

  @Test
  void followsAChannelInsteadOfTheNewestVersion() throws Exception {
    agent.close();
    agent = fx.agent(bucket, fx.settings().withChannel(Optional.of("stable")));
    fx.publish(bucket, "v1", Optional.empty(), "none", fx.tensors());
    fx.publish(
        bucket, "v2", Optional.of("v1"), "none", Map.of(Q0, Fixture.scaled(fx.matrix(Q0), 2f)));
    assertThat(agent.pollOnce()).isEmpty();
    Publisher.unverified(bucket, fx.clock).promote(Fixture.MODEL, "stable", "v1");
    assertThat(agent.pollOnce()).contains("v1");
    Publisher.unverified(bucket, fx.clock).promote(Fixture.MODEL, "stable", "v2");
    assertThat(agent.pollOnce()).contains("v2");
  }

  @Test
  void aVersionWithoutManifestIsIgnored() throws Exception {
    Path dir = Files.createDirectories(bucket.root().resolve("stories/versions/v9"));
    Publisher.writeTensors(dir.resolve("model.safetensors"), fx.tensors());
    assertThat(agent.pollOnce()).isEmpty();
    assertThat(fx.events).isEmpty();
  }

  @Test
  void everyUnusableManifestPollingSeesIsReportedOnceWithItsReason() throws Exception {
    publishV1();
    Path versions = bucket.root().resolve("stories/versions");
    fx.publish(bucket, "v2", Optional.empty(), "none", fx.tensors());
    Path good = versions.resolve("v2/manifest.json");
    String manifest = Files.readString(good);
    // Garbage JSON, a file path that leaves the folder, and a manifest naming another version.
    Files.createDirectories(versions.resolve("v3"));
    Files.writeString(versions.resolve("v3/manifest.json"), "{not json");
    Files.createDirectories(versions.resolve("v4"));
    Files.writeString(
        versions.resolve("v4/manifest.json"),
        manifest.replace("\"v2\"", "\"v4\"").replace("model.safetensors", "../model.safetensors"));
    Files.createDirectories(versions.resolve("v5"));
    Files.writeString(versions.resolve("v5/manifest.json"), manifest);
    assertThat(agent.pollOnce()).contains("v2");
    var rejected = fx.of(Step.REJECTED);
    assertThat(rejected).extracting(Fixture.Event::version).containsExactly("v3", "v4", "v5");
    assertThat(rejected)
        .allSatisfy(e -> assertThat(e.attrs()).containsEntry("reason", "bad_manifest"));
    assertThat(rejected.get(0).message()).contains("stories/versions/v3/manifest.json");
    assertThat(rejected.get(1).message()).contains("../model.safetensors");
    assertThat(rejected.get(2).message()).contains("names stories/v2");
    assertThat(agent.lastRejection()).startsWith("bad_manifest: ");
    // Reported once per manifest content, again when it changes.
    agent.pollOnce();
    assertThat(fx.of(Step.REJECTED)).hasSize(3);
    Files.writeString(versions.resolve("v3/manifest.json"), "[]");
    agent.pollOnce();
    assertThat(fx.of(Step.REJECTED)).hasSize(4);
  }

  @Test
  void aChannelNamingNoVersionIsReported() throws Exception {
    agent.close();
    agent = fx.agent(bucket, fx.settings().withChannel(Optional.of("stable")));
    Files.createDirectories(bucket.root().resolve("stories/channels"));
    Files.writeString(bucket.root().resolve("stories/channels/stable"), "../v1\n");
    assertThat(agent.pollOnce()).isEmpty();
    assertThat(fx.of(Step.REJECTED).getLast().attrs()).containsEntry("reason", "bad_channel");
    assertThat(fx.of(Step.REJECTED).getLast().message()).contains("'../v1' is not a version id");
  }

  // ---- rejections: the serving version is untouched and the event says why ----

  private void assertRejected(String version, String reason, String messagePart) {
    assertThat(fx.target.serving.id()).isNotEqualTo(version);
    var e = fx.of(Step.REJECTED).getLast();
    assertThat(e.version()).isEqualTo(version);
    assertThat(e.attrs()).containsEntry("reason", reason);
    assertThat(e.message()).contains(messagePart);
    // The refused download is gone; what remains is kvant's marker and its commit record.
    assertThat(tmp.resolve("staging").toFile().list())
        .isSubsetOf(Staging.MARKER, Staging.COMMITTED)
        .contains(Staging.MARKER);
  }

  @Test
  void rejectsADigestMismatch() throws Exception {
    publishV1();
    fx.publish(
        bucket, "v2", Optional.of("v1"), "w8", Map.of(Q0, Fixture.scaled(fx.matrix(Q0), 2f)));
    Path f = bucket.root().resolve("stories/versions/v2/model.safetensors");
    try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
      raf.seek(raf.length() - 3);
      int b = raf.read();
      raf.seek(raf.length() - 3);
      raf.write(b ^ 0x40);
    }
    assertThat(agent.pollOnce()).isEmpty();
    assertRejected("v2", "digest_mismatch", "model.safetensors");
    assertThat(fx.target.serving.id()).isEqualTo("v1");
    // Not retried while the manifest is unchanged.
    int before = fx.events.size();
    assertThat(agent.pollOnce()).isEmpty();
    assertThat(fx.events).hasSize(before);
  }

  @Test
  void rejectsATruncatedFile() throws Exception {
    publishV1();
    fx.publish(
        bucket, "v2", Optional.of("v1"), "w8", Map.of(Q0, Fixture.scaled(fx.matrix(Q0), 2f)));
    Path f = bucket.root().resolve("stories/versions/v2/model.safetensors");
    try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
      raf.setLength(raf.length() / 2);
    }
    agent.pollOnce();
    assertRejected("v2", "size_mismatch", "truncated");
  }

  @Test
  void rejectsAManifestNamingAMissingParent() throws Exception {
    publishV1();
    fx.publish(
        bucket, "v2", Optional.of("ghost"), "w8", Map.of(Q0, Fixture.scaled(fx.matrix(Q0), 2f)));
    agent.pollOnce();
    assertRejected("v2", "missing_parent", "ghost");
  }

  @Test
  void rejectsWrongShapes() throws Exception {
    publishV1();
    Tensor q = fx.matrix(Q0);
    float[] half = java.util.Arrays.copyOf(TensorData.values(q), q.rows() * q.cols() / 2);
    fx.publish(
        bucket,
        "v2",
        Optional.of("v1"),
        "w8",
        Map.of(Q0, Fixture.matrix(half, q.rows(), q.cols() / 2)));
    agent.pollOnce();
    assertRejected("v2", "shape_mismatch", Q0);
  }

  @Test
  void rejectsNanWeights() throws Exception {
    publishV1();
    Tensor q = fx.matrix(Q0);
    float[] v = TensorData.values(q);
    v[17] = Float.NaN;
    fx.publish(
        bucket, "v2", Optional.of("v1"), "w8", Map.of(Q0, Fixture.matrix(v, q.rows(), q.cols())));
    agent.pollOnce();
    assertRejected("v2", "non_finite", "element 17");
  }

  @Test
  void rejectsAVersionThatFailsTheQualityGate() throws Exception {
    publishV1();
    // Scrambled weights: random matrices everywhere, which 4-bit blocks cannot follow.
    Map<String, Weight> scrambled = new LinkedHashMap<>();
    long seed = 1;
    for (var e : fx.tensors().entrySet()) {
      if (WeightLayout.isLayerMatrix(e.getKey())) {
        scrambled.put(e.getKey(), Fixture.random(Fixture.tensor(e.getValue()), seed++, 1f));
      }
    }
    fx.publish(bucket, "v2", Optional.of("v1"), "w4g32", scrambled);
    agent.pollOnce();
    assertRejected("v2", "gate_failed", "quality gate failed");
    assertThat(fx.target.serving.id()).isEqualTo("v1");
  }
}
