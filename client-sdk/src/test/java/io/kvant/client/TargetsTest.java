package io.kvant.client;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import org.junit.jupiter.api.Test;

class TargetsTest {
  @Test
  void targetsAreValidated() {
    assertThatThrownBy(() -> KvantClient.builder().targets("localhost"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("host:port");
    assertThatThrownBy(() -> KvantClient.builder().targets("h:0"))
        .hasMessageContaining("[1, 65535]");
    assertThatThrownBy(() -> KvantClient.builder().targets("::1:50051"))
        .hasMessageContaining("brackets");
    assertThatThrownBy(() -> KvantClient.builder().targets("dns:///a:1", "b:2"))
        .hasMessageContaining("only target");
    assertThatThrownBy(() -> KvantClient.builder().targets())
        .hasMessage("targets: must not be empty");
    assertThatThrownBy(() -> KvantClient.builder().build())
        .isInstanceOf(IllegalStateException.class);
    assertThatThrownBy(() -> KvantClient.builder().defaultDeadline(Duration.ZERO))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> KvantClient.builder().streamBufferSize(0))
        .isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void hostPortParsing() {
    assertThat(StaticResolverProvider.HostPort.parse("[::1]:50051"))
        .isEqualTo(new StaticResolverProvider.HostPort("::1", 50051));
    assertThat(StaticResolverProvider.HostPort.parse("kvant-0.svc:7000"))
        .isEqualTo(new StaticResolverProvider.HostPort("kvant-0.svc", 7000));
  }
}
