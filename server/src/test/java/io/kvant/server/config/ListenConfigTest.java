package io.kvant.server.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code --listen} / {@code listen:}: the Unix socket next to or instead of TCP. */
class ListenConfigTest {
  @TempDir Path dir;
  Path model;

  @BeforeEach
  void makeModel() throws IOException {
    model = Files.writeString(dir.resolve("tiny.gguf"), "x");
  }

  private ServerConfig load(String... args) throws ConfigException {
    List<String> all = new java.util.ArrayList<>(List.of("--model", model.toString()));
    all.addAll(List.of(args));
    return new ConfigLoader(Map.of()).load(all);
  }

  @Test
  void tcpOnlyByDefault() throws Exception {
    assertThat(load().listen()).isEqualTo(ServerConfig.Listen.TCP);
  }

  @Test
  void unixSocketInsteadOfTcp() throws Exception {
    ServerConfig c = load("--listen", "unix:///run/kvant/kvant.sock");
    assertThat(c.listen().tcp()).isFalse();
    assertThat(c.listen().unixSocket()).contains(Path.of("/run/kvant/kvant.sock"));
  }

  @Test
  void unixSocketNextToTcp() throws Exception {
    ServerConfig c = load("--listen", "unix:/run/kvant.sock, tcp://127.0.0.1:6000");
    assertThat(c.listen().tcp()).isTrue();
    assertThat(c.listen().unixSocket()).contains(Path.of("/run/kvant.sock"));
    assertThat(c.host()).isEqualTo("127.0.0.1");
    assertThat(c.port()).isEqualTo(6000);
  }

  @Test
  void plainTcpMeansHostAndPort() throws Exception {
    ServerConfig c = load("--listen", "unix:///run/k.sock,tcp", "--port", "7001");
    assertThat(c.listen().tcp()).isTrue();
    assertThat(c.port()).isEqualTo(7001);
  }

  @Test
  void yamlListen() throws Exception {
    Path yaml = Files.writeString(dir.resolve("k.yaml"), "listen: unix:///tmp/k.sock\n");
    ServerConfig c = load("--config", yaml.toString());
    assertThat(c.listen())
        .isEqualTo(new ServerConfig.Listen(false, Optional.of(Path.of("/tmp/k.sock"))));
  }

  @Test
  void badAddressesNameTheFlagAndTheProblem() {
    assertThatThrownBy(() -> load("--listen", "unix://relative.sock"))
        .hasMessage(
            "--listen: 'unix://relative.sock' needs an absolute path, as in unix:///run/kvant/kvant.sock");
    assertThatThrownBy(() -> load("--listen", "http://x:1"))
        .hasMessageContaining(
            "--listen: 'http://x:1' is neither unix:///path/to/kvant.sock, tcp://HOST:PORT nor tcp");
    assertThatThrownBy(() -> load("--listen", "tcp://:80"))
        .hasMessageContaining("must be tcp://HOST:PORT");
    assertThatThrownBy(() -> load("--listen", "tcp://h:70000"))
        .hasMessageContaining("--listen: port must be in [0, 65535], got 70000");
    assertThatThrownBy(() -> load("--listen", "unix:///a.sock,unix:///b.sock"))
        .hasMessageContaining("more than one unix: address");
    assertThatThrownBy(() -> load("--listen", "tcp,tcp://h:1"))
        .hasMessageContaining("more than one tcp address");
    assertThatThrownBy(() -> load("--listen", "unix:///" + "x".repeat(120)))
        .hasMessageContaining("longer than the 107 Linux allows");
    assertThatThrownBy(() -> load("--port", "7000", "--listen", "tcp://0.0.0.0:7001"))
        .hasMessageContaining("--port: conflicts with the tcp:// address of --listen");
    assertThatThrownBy(() -> load("--port", "7000", "--listen", "unix:///run/k.sock"))
        .hasMessage("--port: not used: --listen lists no tcp address");
    assertThatThrownBy(() -> load("--listen", "unix:///a.sock,"))
        .hasMessageContaining("--listen: '' is neither");
  }
}
