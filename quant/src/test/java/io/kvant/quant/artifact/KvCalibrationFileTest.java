package io.kvant.quant.artifact;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kvant.engine.format.ModelFormatException;
import io.kvant.engine.format.safetensors.SafetensorsDtype;
import io.kvant.engine.format.safetensors.SafetensorsWriter;
import io.kvant.engine.kv.KeyRope;
import io.kvant.engine.kv.KvGeometry;
import io.kvant.engine.kv.KvScales;
import io.kvant.engine.model.LlamaConfig;
import io.kvant.engine.model.RopeStyle;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class KvCalibrationFileTest {
  /** 2 layers, 2 KV heads of 4 channels (dim 16, 4 query heads), theta 10000. */
  static final LlamaConfig CONFIG =
      new LlamaConfig(16, 32, 2, 4, 2, 32, 64, 10000f, 1e-5f, RopeStyle.ADJACENT_PAIRS);

  static final KvCalibrationFile.Source SOURCE =
      new KvCalibrationFile.Source("builtin-calibration-stories", 1234);

  @TempDir Path tmp;

  static KvScales scales(LlamaConfig c, long seed) {
    KvGeometry g = new KvGeometry(c.layers(), c.kvHeads(), c.headSize());
    Random r = new Random(seed);
    int n = g.layers() * g.kvDim();
    float[] ka = new float[n];
    float[] va = new float[n];
    float[] mean = new float[n];
    float[] moment = new float[n * g.headSize()];
    for (int i = 0; i < n; i++) {
      ka[i] = r.nextFloat() * 3;
      va[i] = r.nextFloat();
      mean[i] = (float) r.nextGaussian();
    }
    for (int i = 0; i < moment.length; i++) {
      moment[i] = (float) r.nextGaussian();
    }
    int hs = g.headSize();
    for (int h = 0; h < g.layers() * g.kvHeads(); h++) {
      for (int i = 0; i < hs; i++) {
        moment[(h * hs + i) * hs + i] = Math.abs(moment[(h * hs + i) * hs + i]);
      }
    }
    return new KvScales(g, false, ka, va, new KeyRope(c.ropeTheta(), c.ropeStyle()), mean, moment);
  }

  /** Writes a valid file. */
  static Path valid(Path dir) throws Exception {
    Path f = dir.resolve(KvCalibrationFile.FILE_NAME);
    KvCalibrationFile.write(f, scales(CONFIG, 7), SOURCE);
    return f;
  }

  @Test
  void roundTripsTheStatisticsAndTheirSource() throws Exception {
    KvScales s = scales(CONFIG, 7);
    Path f = tmp.resolve(KvCalibrationFile.FILE_NAME);
    KvCalibrationFile.write(f, s, SOURCE);
    KvCalibrationFile.Contents c = KvCalibrationFile.read(f, CONFIG);
    assertThat(c.scales()).isEqualTo(s);
    assertThat(c.source()).isEqualTo(SOURCE);
  }

  @Test
  void refusesToWriteStatisticsWithoutKeyMoments() {
    KvGeometry g = new KvGeometry(2, 2, 4);
    KvScales maxima = new KvScales(g, false, new float[16], new float[16]);
    assertThatThrownBy(() -> KvCalibrationFile.write(tmp.resolve("x.safetensors"), maxima, SOURCE))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("key moments");
  }

  // ------------------------------------------------------------------ rejections

  @Test
  void refusesAnotherModelsGeometry() throws Exception {
    Path f = valid(tmp);
    LlamaConfig threeLayers =
        new LlamaConfig(16, 32, 3, 4, 2, 32, 64, 10000f, 1e-5f, RopeStyle.ADJACENT_PAIRS);
    assertRejected(f, threeLayers, "kv.key_amax: shape [2, 2, 4]", "needs [3, 2, 4]");
  }

  @Test
  void refusesAnotherRope() throws Exception {
    Path f = valid(tmp);
    LlamaConfig otherTheta =
        new LlamaConfig(16, 32, 2, 4, 2, 32, 64, 500000f, 1e-5f, RopeStyle.ADJACENT_PAIRS);
    assertRejected(f, otherTheta, "calibrated under RoPE theta 10000.0", "theta 500000.0");
    LlamaConfig otherStyle =
        new LlamaConfig(16, 32, 2, 4, 2, 32, 64, 10000f, 1e-5f, RopeStyle.HALF_SPLIT);
    assertRejected(f, otherStyle, "ADJACENT_PAIRS", "HALF_SPLIT");
  }

  @Test
  void refusesAWrongDtype() throws Exception {
    Path f =
        craft(w -> w.add(KvCalibrationFile.KEY_AMAX, SafetensorsDtype.F16, shape3(), new byte[32]));
    assertRejected(f, CONFIG, "kv.key_amax: dtype F16, expected F32");
  }

  @Test
  void refusesAMissingTensor() throws Exception {
    Path f = craft(w -> {});
    assertRejected(f, CONFIG, "missing tensor 'kv.key_amax'");
  }

  @Test
  void refusesAnUnknownTensor() throws Exception {
    Path f =
        craft(
            w -> {
              w.add(KvCalibrationFile.KEY_AMAX, SafetensorsDtype.F32, shape3(), f32(16, 1f));
              w.add("kv.extra", SafetensorsDtype.F32, new long[] {1}, f32(1, 0f));
            });
    assertRejected(f, CONFIG, "unknown tensor 'kv.extra'");
  }

  @Test
  void refusesNonFiniteValues() throws Exception {
    byte[] nan = f32(16, 1f);
    MemorySegment.ofArray(nan).set(LE, 4 * 5, Float.NaN);
    Path f = craft(w -> w.add(KvCalibrationFile.KEY_AMAX, SafetensorsDtype.F32, shape3(), nan));
    assertRejected(f, CONFIG, "key_amax[5]: must be finite");
  }

  @Test
  void refusesANegativeMaximumAndANegativeMomentDiagonal() throws Exception {
    byte[] negative = f32(16, 1f);
    MemorySegment.ofArray(negative).set(LE, 0, -1f);
    assertRejected(
        craft(w -> w.add(KvCalibrationFile.KEY_AMAX, SafetensorsDtype.F32, shape3(), negative)),
        CONFIG,
        "key_amax[0]: must be finite and >= 0");
    Files.delete(tmp.resolve(KvCalibrationFile.FILE_NAME));
    byte[] moment = f32(64, 1f);
    MemorySegment.ofArray(moment).set(LE, 4 * 5, -0.5f); // (head 0, i 1, j 1)
    assertRejected(
        craft(
            w ->
                w.add(
                    KvCalibrationFile.QUERY_MOMENT,
                    SafetensorsDtype.F32,
                    new long[] {2, 2, 4, 4},
                    moment)),
        CONFIG,
        "query_moment[5]: a diagonal element must be >= 0");
  }

  @Test
  void refusesMissingOrForeignMetadata() throws Exception {
    Path f = tmp.resolve(KvCalibrationFile.FILE_NAME);
    new SafetensorsWriter()
        .add(KvCalibrationFile.KEY_AMAX, SafetensorsDtype.F32, shape3(), f32(16, 1f))
        .write(f);
    assertRejected(f, CONFIG, "no kvant.kv_calibration metadata");
    for (String[] bad :
        new String[][] {
          {"not json", "is not JSON"},
          {"[1]", "is not a JSON object"},
          {"{\"schema\":2}", ".schema must be 1, got 2"},
          {"{\"schema\":1,\"rope_theta\":\"x\",\"rope_style\":\"ADJACENT_PAIRS\"}", "rope_theta"},
          {
            "{\"schema\":1,\"rope_theta\":10000.0,\"rope_style\":\"ADJACENT_PAIRS\","
                + "\"calibration_text\":\"t\",\"calibration_tokens\":-1}",
            "calibration tokens must be >= 0"
          },
          {
            "{\"schema\":1,\"rope_theta\":10000.0,\"rope_style\":\"ADJACENT_PAIRS\","
                + "\"calibration_text\":\"t\",\"calibration_tokens\":1.5}",
            "calibration_tokens (an integer)"
          }
        }) {
      new SafetensorsWriter()
          .metadata(KvCalibrationFile.METADATA_KEY, bad[0])
          .add(KvCalibrationFile.KEY_AMAX, SafetensorsDtype.F32, shape3(), f32(16, 1f))
          .write(f);
      assertRejected(f, CONFIG, bad[1]);
    }
  }

  @Test
  void refusesATruncatedFile() throws Exception {
    Path f = valid(tmp);
    byte[] b = Files.readAllBytes(f);
    Files.write(f, java.util.Arrays.copyOf(b, b.length - 10));
    assertThatThrownBy(() -> KvCalibrationFile.read(f, CONFIG))
        .isInstanceOf(ModelFormatException.class)
        .hasMessageStartingWith(KvCalibrationFile.FILE_NAME + ": ");
  }

  // ------------------------------------------------------------------ in a version folder

  @Test
  void aFolderReadsTheFileOnlyWhenItsManifestListsIt() throws Exception {
    Path dir = Files.createDirectories(tmp.resolve("v1"));
    manifest(dir, List.of()).write(dir);
    assertThat(QuantizedArtifact.kvCalibration(dir, CONFIG)).isEmpty();

    Path f = valid(dir);
    assertThatThrownBy(() -> QuantizedArtifact.kvCalibration(dir, CONFIG))
        .isInstanceOf(ArtifactException.class)
        .hasMessageContaining("kv_calibration.safetensors is not listed in manifest.json");

    manifest(
            dir,
            List.of(
                new Manifest.FileEntry(
                    KvCalibrationFile.FILE_NAME, Files.size(f), Digests.sha256(f))))
        .write(dir);
    assertThat(QuantizedArtifact.kvCalibration(dir, CONFIG).orElseThrow().scales())
        .isEqualTo(scales(CONFIG, 7));

    // Another file of the same size under the listed digest: tampered with.
    KvCalibrationFile.write(f, scales(CONFIG, 8), SOURCE);
    assertThatThrownBy(() -> QuantizedArtifact.kvCalibration(dir, CONFIG))
        .isInstanceOf(ArtifactException.class)
        .hasMessageContaining("sha256 of 'kv_calibration.safetensors'");
  }

  private static Manifest manifest(Path dir, List<Manifest.FileEntry> kv) {
    // A full version lists its weights; kvCalibration checks only its own file's entry.
    List<Manifest.FileEntry> files = new java.util.ArrayList<>(kv);
    files.add(new Manifest.FileEntry("model.safetensors", 1, "0".repeat(64)));
    return new Manifest(
        "m",
        "v1",
        Optional.empty(),
        Instant.parse("2026-12-05T00:00:00Z"),
        "test",
        "none",
        files,
        List.of(
            new Manifest.TensorEntry("x", "model.safetensors", "F32", List.of(1L), "0".repeat(64))),
        Optional.empty(),
        Optional.empty());
  }

  // ------------------------------------------------------------------ helpers

  private static final ValueLayout.OfFloat LE =
      ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  private static long[] shape3() {
    return new long[] {2, 2, 4};
  }

  private static byte[] f32(int n, float v) {
    byte[] b = new byte[n * 4];
    for (int i = 0; i < n; i++) {
      MemorySegment.ofArray(b).set(LE, 4L * i, v);
    }
    return b;
  }

  /**
   * A file with valid metadata whose tensors are the valid ones, except those {@code edit} adds
   * (which replace the valid tensor of the same name; a name it does not add stays absent when
   * {@code edit} adds none at all).
   */
  private Path craft(Consumer<SafetensorsWriter> edit) throws Exception {
    SafetensorsWriter w = new SafetensorsWriter();
    w.metadata(
        KvCalibrationFile.METADATA_KEY,
        "{\"schema\":1,\"rope_theta\":10000.0,\"rope_style\":\"ADJACENT_PAIRS\","
            + "\"calibration_text\":\"t\",\"calibration_tokens\":3}");
    edit.accept(w);
    SafetensorsWriter full = new SafetensorsWriter();
    // Re-add in a fresh writer: the edited ones first, then the valid rest.
    Path probe = tmp.resolve("probe.safetensors");
    w.write(probe);
    List<String> present;
    try (var sf = io.kvant.engine.format.safetensors.SafetensorsReader.open(probe)) {
      present = sf.tensorNames();
      full.metadata(
          KvCalibrationFile.METADATA_KEY, sf.metadata().get(KvCalibrationFile.METADATA_KEY));
      for (var t : sf.tensors()) {
        full.add(
            t.name(), t.dtype(), t.shape(), sf.tensorData(t.name()).toArray(ValueLayout.JAVA_BYTE));
      }
    }
    Files.delete(probe);
    if (!present.isEmpty()) {
      for (String name :
          List.of(
              KvCalibrationFile.KEY_AMAX,
              KvCalibrationFile.VALUE_AMAX,
              KvCalibrationFile.KEY_MEAN)) {
        if (!present.contains(name)) {
          full.add(name, SafetensorsDtype.F32, shape3(), f32(16, 1f));
        }
      }
      if (!present.contains(KvCalibrationFile.QUERY_MOMENT)) {
        full.add(
            KvCalibrationFile.QUERY_MOMENT,
            SafetensorsDtype.F32,
            new long[] {2, 2, 4, 4},
            f32(64, 1f));
      }
    }
    Path f = tmp.resolve(KvCalibrationFile.FILE_NAME);
    full.write(f);
    return f;
  }

  private static void assertRejected(Path f, LlamaConfig c, String... parts) {
    var a =
        assertThatThrownBy(() -> KvCalibrationFile.read(f, c))
            .isInstanceOf(ModelFormatException.class)
            .hasMessageStartingWith(KvCalibrationFile.FILE_NAME + ": ");
    for (String p : parts) {
      a.hasMessageContaining(p);
    }
  }
}
