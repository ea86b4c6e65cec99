package io.kvant.reload;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kvant.reload.manifest.Manifest;
import io.kvant.reload.manifest.ManifestCodec;
import io.kvant.reload.manifest.ManifestException;
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

/** Round trip, bounds, and fuzzing: nothing but a ManifestException ever escapes the parser. */
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
          {"\"F32\"", "\"I64\""},
          {"\"v1\"", "\"v2\""},
          {"kvant.version/1", "kvant.version/9"},
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
