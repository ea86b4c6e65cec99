package io.kvant.server.sdk;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kvant.client.Chunk;
import io.kvant.client.Completion;
import io.kvant.client.GenerateParams;
import io.kvant.client.KvantClient;
import io.kvant.client.TokenStream;
import io.kvant.server.KvantServer;
import io.kvant.server.config.ServerConfig;
import io.kvant.server.config.ServerConfig.ModelSettings;
import io.kvant.server.config.ServerConfig.SchedulerSettings;
import io.kvant.server.config.ServerConfig.SecuritySettings;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The sidecar transport end to end: a real kvant (stories260K) serving gRPC on a Unix domain
 * socket, alone or next to TCP, and the SDK calling it with a {@code unix://} target.
 */
class UnixSocketEndToEndTest {
  @TempDir Path dir;

  static ServerConfig config(ServerConfig.Listen listen) {
    return new ServerConfig(
            "127.0.0.1",
            0,
            new ModelSettings(
                RealServerTest.model(), "stories", "none", "f32", Optional.empty(), 64),
            new SchedulerSettings(64, 256, 32, 16L << 20, 16, 4096),
            new SecuritySettings(
                Optional.empty(),
                Optional.empty(),
                Optional.empty(),
                Optional.empty(),
                Optional.empty()),
            0,
            Optional.empty(),
            Duration.ofSeconds(5),
            2,
            Optional.empty())
        .withListen(listen);
  }

  @Test
  void servesOnTheSocketOnlyAndRemovesItAtShutdown() throws Exception {
    Path socket = dir.resolve("kvant.sock");
    KvantServer server =
        KvantServer.start(
            config(new ServerConfig.Listen(false, Optional.of(socket))),
            Clock.systemUTC(),
            Optional.empty());
    try {
      assertThat(server.port()).as("no TCP listener").isEqualTo(-1);
      assertThat(server.unixSocket()).contains(socket.toAbsolutePath());
      assertThat(Files.getPosixFilePermissions(socket))
          .isEqualTo(java.nio.file.attribute.PosixFilePermissions.fromString("rw-rw----"));
      try (KvantClient client = KvantClient.builder().targets("unix://" + socket).build()) {
        GenerateParams p =
            GenerateParams.builder()
                .prompt("Once upon a time")
                .maxTokens(24)
                .returnTokenIds(true)
                .build();
        Completion blocking = client.generate(p);
        List<Integer> streamed = new ArrayList<>();
        try (TokenStream s = client.stream(p)) {
          while (s.hasNext()) {
            Chunk c = s.next();
            streamed.addAll(c.tokenIds());
          }
        }
        assertThat(blocking.tokenIds()).hasSize(24);
        assertThat(streamed).isEqualTo(blocking.tokenIds());
        assertThat(client.listModels())
            .extracting(io.kvant.api.v1.ModelInfo::getName)
            .contains("stories");
      }
    } finally {
      server.shutdownGracefully();
    }
    assertThat(Files.exists(socket)).isFalse();
  }

  @Test
  void servesOnTcpAndTheSocketAtOnce() throws Exception {
    Path socket = dir.resolve("both.sock");
    KvantServer server =
        KvantServer.start(
            config(new ServerConfig.Listen(true, Optional.of(socket))),
            Clock.systemUTC(),
            Optional.empty());
    try (KvantClient overSocket = KvantClient.builder().targets("unix://" + socket).build();
        KvantClient overTcp = KvantClient.builder().targets("127.0.0.1:" + server.port()).build()) {
      GenerateParams p =
          GenerateParams.builder().prompt("Lily").maxTokens(12).returnTokenIds(true).build();
      assertThat(overSocket.generate(p).tokenIds()).isEqualTo(overTcp.generate(p).tokenIds());
    } finally {
      server.shutdownGracefully();
    }
  }

  @Test
  void aStaleSocketFileIsReplacedButALiveOneOrAFileIsNot() throws Exception {
    Path live = dir.resolve("live.sock");
    try (ServerSocketChannel other = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
      other.bind(UnixDomainSocketAddress.of(live));
      assertThatThrownBy(
              () ->
                  KvantServer.start(
                      config(new ServerConfig.Listen(false, Optional.of(live))),
                      Clock.systemUTC(),
                      Optional.empty()))
          .isInstanceOf(IOException.class)
          .hasMessageContaining("another process is serving on this socket");
    }
    // The channel is closed but its file stays: a stale socket, as a killed process leaves.
    assertThat(Files.exists(live)).isTrue();
    KvantServer server =
        KvantServer.start(
            config(new ServerConfig.Listen(false, Optional.of(live))),
            Clock.systemUTC(),
            Optional.empty());
    server.shutdownGracefully();

    Path file = Files.writeString(dir.resolve("data.txt"), "keep me");
    assertThatThrownBy(
            () ->
                KvantServer.start(
                    config(new ServerConfig.Listen(false, Optional.of(file))),
                    Clock.systemUTC(),
                    Optional.empty()))
        .isInstanceOf(IOException.class)
        .hasMessageContaining("not a socket");
    assertThat(Files.readString(file)).isEqualTo("keep me");
  }
}
