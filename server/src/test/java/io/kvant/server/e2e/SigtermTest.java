package io.kvant.server.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** {@code kvant serve} as a real process: SIGTERM drains it and it exits 0. */
class SigtermTest {
  @Test
  void sigtermDrainsAndExitsZero() throws Exception {
    Path java = Path.of(ProcessHandle.current().info().command().orElseThrow());
    List<String> cmd =
        new ArrayList<>(
            List.of(
                java.toString(),
                "--add-modules",
                "jdk.incubator.vector",
                "-cp",
                System.getProperty("java.class.path"),
                "io.kvant.server.cli.Main",
                "serve",
                "--model",
                TestServer.stories().toString(),
                "--host",
                "127.0.0.1",
                "--port",
                Integer.toString(TestServer.freePort()),
                "--metrics-port",
                "0",
                "--threads",
                "1",
                "--drain-timeout",
                "5"));
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
      assertThat(log.toString()).contains("kvant: serving model stories260K");
      // Process.destroy() would also close our end of the pipes; send the signal as an operator
      // does.
      assertThat(new ProcessBuilder("kill", "-TERM", Long.toString(p.pid())).start().waitFor())
          .isZero();
      assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
      while ((line = out.readLine()) != null) {
        log.append(line).append('\n');
      }
      assertThat(p.exitValue()).as(log.toString()).isZero();
      assertThat(log.toString()).contains("kvant: stopped");
    } finally {
      p.destroyForcibly();
    }
  }
}
