package io.kvant.client;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.client.testing.FakeKvantServer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The SDK reaches a server on a Unix domain socket with a {@code unix://} target. */
class UnixSocketTest {
  @TempDir Path dir;

  @Test
  void generatesAndStreamsOverAUnixSocket() throws Exception {
    Path socket = dir.resolve("kvant.sock");
    try (FakeKvantServer server =
        FakeKvantServer.builder().unixSocket(socket).respond("over the socket").start()) {
      assertThat(Files.exists(socket)).isTrue();
      assertThat(server.target()).isEqualTo("unix://" + socket.toAbsolutePath());
      try (KvantClient client = KvantClient.builder().targets(server.target()).build()) {
        Completion c = client.generate(GenerateParams.builder().prompt("hi").build());
        assertThat(c.text()).isEqualTo("over the socket");
        List<String> chunks = new ArrayList<>();
        try (TokenStream stream =
            client.stream(GenerateParams.builder().prompt("hi").requestId("uds-1").build())) {
          stream.forEachRemaining(chunk -> chunks.add(chunk.text()));
        }
        assertThat(chunks).containsExactly("over", " the", " socket");
        assertThat(server.requests().get(1).requestIdHeader()).isEqualTo("uds-1");
      }
      // unix:/path (one slash) is the same target
      try (KvantClient client = KvantClient.builder().targets("unix:" + socket).build()) {
        assertThat(client.generate(GenerateParams.builder().prompt("x").build()).text())
            .isEqualTo("over the socket");
      }
    }
    assertThat(Files.exists(socket)).as("socket file removed at close").isFalse();
  }

  @Test
  void aMissingSocketIsUnavailable() {
    try (KvantClient client =
        KvantClient.builder()
            .targets("unix://" + dir.resolve("nobody-here.sock"))
            .retryPolicy(RetryPolicy.none())
            .build()) {
      Throwable t =
          org.assertj.core.api.Assertions.catchThrowable(
              () -> client.generate(GenerateParams.builder().prompt("hi").build()));
      assertThat(t).isInstanceOf(UnavailableException.class);
    }
  }
}
