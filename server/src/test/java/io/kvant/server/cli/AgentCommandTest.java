package io.kvant.server.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** kvant agent publish and verify against a folder bucket. */
class AgentCommandTest {
  @TempDir Path tmp;

  static Path stories() {
    for (Path d = Path.of("").toAbsolutePath(); d != null; d = d.getParent()) {
      for (Path c : new Path[] {d.resolve("shared/models"), d.resolve("../shared/models")}) {
        if (Files.isDirectory(c)) {
          return c.resolve("stories260K/stories260K.gguf").normalize();
        }
      }
    }
    throw new IllegalStateException("shared/models not found");
  }

  record Run(int code, String out, String err) {}

  static Run run(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code =
        new AgentCommand(
                new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8),
                Map.of("USER", "tester"))
            .run(List.of(args));
    return new Run(
        code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }

  @Test
  void publishesAModelAndVerifiesIt() throws Exception {
    String bucket = tmp.resolve("bucket").toUri().toString().replaceAll("/$", "");
    Run p =
        run(
            "publish",
            "--model",
            stories().toString(),
            "--bucket",
            bucket,
            "--name",
            "stories",
            "--version",
            "v1",
            "--recipe",
            "w8",
            "--channel",
            "stable",
            "--base",
            stories().toString());
    assertThat(p.code()).as(p.err()).isZero();
    assertThat(p.out())
        .contains("stories/versions/v1", "channel stable", "0 changed", "36 re-quantized");
    Path version = tmp.resolve("bucket/stories/versions/v1");
    assertThat(version.resolve("manifest.json")).exists();
    assertThat(Files.readString(tmp.resolve("bucket/stories/channels/stable")).strip())
        .isEqualTo("v1");

    Run v = run("verify", bucket + "/stories/versions/v1", "--model", stories().toString());
    assertThat(v.code()).as(v.out() + v.err()).isZero();
    assertThat(v.out()).startsWith("OK v1").contains("36 re-quantized", "top1_agreement");

    try (RandomAccessFile raf =
        new RandomAccessFile(version.resolve("model.safetensors").toFile(), "rw")) {
      raf.setLength(raf.length() - 10);
    }
    Run bad = run("verify", bucket + "/stories/versions/v1", "--model", stories().toString());
    assertThat(bad.code()).isEqualTo(1);
    assertThat(bad.out()).contains("REJECTED v1 (size_mismatch)");

    assertThat(run("verify").code()).isEqualTo(2);
    assertThat(run("publish", "--bucket", bucket).err()).contains("--model is required");
  }
}
