package io.kvant.quant.artifact;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.Size;
import org.junit.jupiter.api.Test;

/**
 * Round trip, bounds, the field each refusal names, the older formats, and fuzzing: nothing but a
 * ManifestException ever escapes the parser.
 */
class ManifestCodecTest {
  static final String SHA = "a".repeat(64);

  static Manifest sample() {
    return new Manifest(
        "stories",
        "v2",
        Optional.of("v1"),
        Instant.parse("2026-11-24T10:00:00Z"),
        "ci@example",
        "w8",
        List.of(new Manifest.FileEntry("model.safetensors", 123, SHA)),
        List.of(
            new Manifest.TensorEntry(
                "blk.0.attn_q.weight", "model.safetensors", "F32", List.of(64L, 64L), SHA)),
        Optional.empty(),
        Optional.empty());
  }

  @Test
  void roundTrips() throws Exception {
    Manifest m = sample();
    assertThat(ManifestCodec.parse(ManifestCodec.write(m))).isEqualTo(m);
  }

  @Test
  void refusesWhatBreaksABound() {
    String ok = new String(ManifestCodec.write(sample()), StandardCharsets.UTF_8);
    for (String[] bad :
        new String[][] {
          {"\"v2\"", "\"../x\""},
          {"\"path\" : \"model.safetensors\"", "\"path\" : \"../etc/passwd\""},
          {SHA, "xyz"},
          {"123", "-1"},
          {"[ 64, 64 ]", "[ 64, 0 ]"},
          {"[ 64, 64 ]", "[ 1, 2, 3, 4, 5 ]"},
          {"\"F32\"", "\"Q4\""},
          {"\"v1\"", "\"v2\""},
          {"kvant.manifest/2", "kvant.manifest/9"},
          {"2026-11-24T10:00:00Z", "yesterday"},
        }) {
      String s = ok.replace(bad[0], bad[1]);
      assertThat(s).as("pattern %s", bad[0]).isNotEqualTo(ok);
      assertThatThrownBy(() -> ManifestCodec.parse(s.getBytes(StandardCharsets.UTF_8)))
          .as(bad[1])
          .isInstanceOf(ManifestException.class);
    }
    assertThatThrownBy(() -> ManifestCodec.parse(new byte[ManifestCodec.MAX_BYTES + 1]))
        .isInstanceOf(ManifestException.class)
        .hasMessageContaining("more than");
    assertThatThrownBy(() -> ManifestCodec.parse("[".repeat(10_000).getBytes()))
        .isInstanceOf(ManifestException.class);
  }

  @Test
  void namesTheFieldItRejects() {
    String ok = new String(ManifestCodec.write(sample()), StandardCharsets.UTF_8);
    for (String[] bad :
        new String[][] {
          {"\"kvant.manifest/2\"", "\"kvant.manifest/9\"", "manifest.format"},
          {"\"model\" : \"stories\"", "\"model\" : \"a/b\"", "manifest.model"},
          {"\"version\" : \"v2\"", "\"version\" : 2", "manifest.version"},
          {"\"parent\" : \"v1\"", "\"parent\" : \"v2\"", "manifest.parent"},
          {"2026-11-24T10:00:00Z", "yesterday", "manifest.created"},
          {"\"publisher\" : \"ci@example\"", "\"publisher\" : 7", "manifest.publisher"},
          {"\"recipe\" : \"w8\"", "\"recipe\" : \"w 8\"", "manifest.recipe"},
          {"\"files\" : [", "\"files\" : 1, \"x\" : [", "manifest.files"},
          {"\"path\" : \"model.safetensors\"", "\"path\" : \"a/b\"", "files[0].path"},
          {"\"size\" : 123", "\"size\" : -1", "files[0].size"},
          {
            "\"size\" : 123,\n    \"sha256\" : \"" + SHA,
            "\"size\" : 123,\n    \"sha256\" : \"x",
            "files[0].sha256"
          },
          {"\"name\" : \"blk.0.attn_q.weight\"", "\"name\" : \"../q\"", "tensors[0].name"},
          {
            "\"file\" : \"model.safetensors\"",
            "\"file\" : \"other.safetensors\"",
            "tensors[0].file"
          },
          {"\"dtype\" : \"F32\"", "\"dtype\" : \"Q4\"", "tensors[0].dtype"},
          {"[ 64, 64 ]", "[ 64, 0 ]", "tensors[0].shape[1]"},
          {"[ 64, 64 ]", "[ ]", "tensors[0].shape"},
          {
            "\"dtype\" : \"F32\",",
            "\"dtype\" : \"F32\", \"sha256\" : 1,",
            "manifest: not valid JSON: Duplicate field 'sha256'"
          },
        }) {
      String s = ok.replace(bad[0], bad[1]);
      assertThat(s).as("pattern %s", bad[0]).isNotEqualTo(ok);
      assertThatThrownBy(() -> ManifestCodec.parse(s.getBytes(StandardCharsets.UTF_8)))
          .as(bad[1])
          .isInstanceOf(ManifestException.class)
          .hasMessageStartingWith(bad[2]);
    }
    String noEncodings =
        ok.replace("\"tensors\" : [", "\"encodings\" : \"e.json\", \"tensors\" : [");
    assertThatThrownBy(() -> ManifestCodec.parse(noEncodings.getBytes(StandardCharsets.UTF_8)))
        .isInstanceOf(ManifestException.class)
        .hasMessageStartingWith("manifest.encodings");
  }

  @Test
  void listsPreQuantizedCodesWithTheirDtype() throws Exception {
    Manifest m =
        new Manifest(
            "stories",
            "q1",
            Optional.empty(),
            Instant.parse("2026-11-24T10:00:00Z"),
            "quantize",
            "none",
            List.of(
                new Manifest.FileEntry("model.safetensors", 9, SHA),
                new Manifest.FileEntry("encodings.json", 3, SHA)),
            List.of(
                new Manifest.TensorEntry(
                    "blk.0.attn_q.weight", "model.safetensors", "I8", List.of(64L, 64L), SHA),
                new Manifest.TensorEntry(
                    "blk.0.attn_q.weight.scale", "model.safetensors", "F32", List.of(64L), SHA)),
            Optional.of("encodings.json"),
            Optional.empty());
    assertThat(ManifestCodec.parse(ManifestCodec.write(m))).isEqualTo(m);
  }

  @Test
  void readsTheOlderBucketFormat() throws Exception {
    String v1 =
        new String(ManifestCodec.write(sample()), StandardCharsets.UTF_8)
            .replace(Manifest.FORMAT, ManifestCodec.BUCKET_V1);
    assertThat(ManifestCodec.parse(v1.getBytes(StandardCharsets.UTF_8))).isEqualTo(sample());
  }

  @Test
  void readsTheOlderQuantizeFolderFormat() throws Exception {
    // As `kvant quantize` wrote it before the one schema: "schema", recipe as an object, no
    // "encodings" field (encodings.json listed among the files).
    String folder =
        """
        {"schema": "kvant.manifest/v1", "model": "stories260K", "version": "w8-1", "parent": null,
         "publisher": "kvant-quantize", "created": "2026-11-24T10:00:00Z",
         "recipe": {"name": "w8", "roles": {}},
         "files": [{"path": "model.safetensors", "size": 9, "sha256": "%s"},
                   {"path": "encodings.json", "size": 3, "sha256": "%s"}],
         "tensors": [{"name": "blk.0.attn_q.weight", "file": "model.safetensors", "dtype": "I8",
                      "shape": [64, 64], "sha256": "%s"}]}
        """
            .formatted(SHA, SHA, SHA);
    Manifest m = ManifestCodec.parse(folder.getBytes(StandardCharsets.UTF_8));
    assertThat(m.recipe()).isEqualTo("none");
    assertThat(m.parent()).isEmpty();
    assertThat(m.encodings()).contains("encodings.json");
    assertThat(m.tensors().get(0).dtype()).isEqualTo("I8");
    assertThatThrownBy(
            () ->
                ManifestCodec.parse(
                    folder.replace("kvant.manifest/v1", "kvant.manifest/v0").getBytes()))
        .isInstanceOf(ManifestException.class)
        .hasMessageStartingWith("manifest.schema");
  }

  @Property(tries = 300)
  void arbitraryBytesNeverEscapeAsAnythingButManifestException(
      @ForAll @Size(max = 600) byte[] bytes) {
    parseQuietly(bytes);
  }

  @Property(tries = 300)
  void mutatedManifestsNeverEscape(@ForAll("mutations") byte[] bytes) {
    parseQuietly(bytes);
  }

  @Provide
  Arbitrary<byte[]> mutations() {
    byte[] base = ManifestCodec.write(sample());
    return Arbitraries.integers()
        .between(0, base.length - 1)
        .list()
        .ofMinSize(1)
        .ofMaxSize(6)
        .flatMap(
            positions ->
                Arbitraries.bytes()
                    .array(byte[].class)
                    .ofSize(positions.size())
                    .map(
                        vals -> {
                          byte[] b = base.clone();
                          for (int i = 0; i < positions.size(); i++) {
                            b[positions.get(i)] = vals[i];
                          }
                          return b;
                        }));
  }

  private static void parseQuietly(byte[] bytes) {
    try {
      Manifest m = ManifestCodec.parse(bytes);
      assertThat(m.version()).matches("[A-Za-z0-9][A-Za-z0-9._-]*");
      assertThat(m.files()).allSatisfy(f -> assertThat(f.path()).doesNotContain("/", ".."));
    } catch (ManifestException expected) {
      // fine
    }
  }
}
