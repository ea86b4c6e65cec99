package io.kvant.server.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code kvant quantize --out}: a version folder is written once. One that holds anything (a
 * published version, or other files) is refused before any work and left as it was; a new or empty
 * folder gets the version.
 */
class QuantizeOutFolderTest {
  private final ByteArrayOutputStream out = new ByteArrayOutputStream();
  private final ByteArrayOutputStream err = new ByteArrayOutputStream();
  @TempDir Path dir;

  private int quantize(Path outDir) {
    return new QuantizeCommand(
            new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8),
            Map.of())
        .run(
            List.of(
                "--model",
                AgentCommandTest.stories().toString(),
                "--recipe",
                "w8",
                "--out",
                outDir.toString(),
                "--no-kv-calibration"));
  }

  @Test
  void aPublishedVersionIsNotOverwritten() throws IOException {
    Path v = dir.resolve("v1");
    assertThat(quantize(v)).as(err.toString(StandardCharsets.UTF_8)).isZero();
    byte[] manifest = Files.readAllBytes(v.resolve("manifest.json"));
    byte[] weights = Files.readAllBytes(v.resolve("model.safetensors"));
    err.reset();
    assertThat(quantize(v)).isEqualTo(2);
    assertThat(err.toString(StandardCharsets.UTF_8))
        .contains(
            "kvant quantize: --out " + v + " is not empty (it holds a version: manifest.json)");
    assertThat(Files.readAllBytes(v.resolve("manifest.json"))).isEqualTo(manifest);
    assertThat(Files.readAllBytes(v.resolve("model.safetensors"))).isEqualTo(weights);
  }

  @Test
  void aFolderWithOtherFilesIsRefusedAndAFileIsNotAFolder() throws IOException {
    Path notes = Files.createDirectories(dir.resolve("busy")).resolve("notes.txt");
    Files.writeString(notes, "keep");
    assertThat(quantize(dir.resolve("busy"))).isEqualTo(2);
    assertThat(err.toString(StandardCharsets.UTF_8)).contains("is not empty;");
    assertThat(Files.list(dir.resolve("busy")).toList()).containsExactly(notes);
    err.reset();
    assertThat(quantize(notes)).isEqualTo(2);
    assertThat(err.toString(StandardCharsets.UTF_8)).contains("is a file, not a folder");
  }

  @Test
  void anEmptyFolderGetsTheVersion() throws IOException {
    Path empty = Files.createDirectories(dir.resolve("empty"));
    assertThat(quantize(empty)).as(err.toString(StandardCharsets.UTF_8)).isZero();
    assertThat(empty.resolve("manifest.json")).exists();
  }
}
