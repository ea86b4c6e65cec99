package io.kvant.server.sdk;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.client.Completion;
import io.kvant.client.GenerateParams;
import io.kvant.client.KvantClient;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code kvant serve --listen unix://...} as a real process, as the sidecar container runs it: it
 * says where it listens, the SDK generates over the socket, and SIGTERM stops it and removes the
 * socket file.
 */
class ServeOnUnixSocketTest {
  @TempDir Path dir;

  @Test
  void serveListensOnTheSocketFromTheCommandLine() throws Exception {
    Path socket = dir.resolve("kvant.sock");
    Path java = Path.of(ProcessHandle.current().info().command().orElseThrow());
    List<String> cmd =
        List.of(
            java.toString(),
            "--add-modules",
            "jdk.incubator.vector",
            "-cp",
            System.getProperty("java.class.path"),
            "io.kvant.server.cli.Main",
            "serve",
            "--model",
            RealServerTest.model().toString(),
            "--listen",
            "unix://" + socket,
            "--metrics-port",
            "0",
            "--threads",
            "1",
            "--drain-timeout",
            "5");
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    try (BufferedReader out =
        new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
      StringBuilder log = new StringBuilder();
      String line;
      while ((line = out.readLine()) != null) {
        log.append(line).append('\n');
        if (line.startsWith("kvant: serving")) {
          break;
        }
      }
      assertThat(log.toString())
          .as(log.toString())
          .contains("kvant: serving model stories260K")
          .contains(" on unix://" + socket + "\n");
      try (KvantClient client = KvantClient.builder().targets("unix://" + socket).build()) {
        Completion c =
            client.generate(
                GenerateParams.builder().promptTokenIds(List.of(1)).maxTokens(8).build());
        assertThat(c.usage().promptTokens()).isEqualTo(1);
        assertThat(c.usage().completionTokens()).isBetween(1, 8);
        assertThat(c.text()).isNotEmpty();
      }
      assertThat(new ProcessBuilder("kill", "-TERM", Long.toString(p.pid())).start().waitFor())
          .isZero();
      assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
      List<String> rest = new ArrayList<>();
      while ((line = out.readLine()) != null) {
        rest.add(line);
      }
      assertThat(p.exitValue()).as(log + String.join("\n", rest)).isZero();
      assertThat(Files.exists(socket)).as("socket file removed at shutdown").isFalse();
    } finally {
      p.destroyForcibly();
    }
  }
}
