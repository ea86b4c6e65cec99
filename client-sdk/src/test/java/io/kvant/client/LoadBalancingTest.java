package io.kvant.client;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.client.testing.FakeKvantServer;
import java.time.Duration;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(20)
class LoadBalancingTest {
  private static final GenerateParams PARAMS = GenerateParams.builder().prompt("hi").build();

  private static KvantClient clientOf(String... targets) {
    return KvantClient.builder()
        .targets(targets)
        .defaultDeadline(Duration.ofSeconds(10))
        .retryPolicy(TestServers.fastRetries(4))
        .build();
  }

  @Test
  void callsAreSpreadOverEverySidecarAndSurviveOneStopping() {
    try (FakeKvantServer a = FakeKvantServer.builder().respond("A").start();
        FakeKvantServer b = FakeKvantServer.builder().respond("B").start();
        KvantClient client = clientOf(a.target(), b.target())) {
      Set<String> answeredBy = new HashSet<>();
      for (int i = 0; i < 50 && answeredBy.size() < 2; i++) {
        answeredBy.add(client.generate(PARAMS).text());
      }
      assertThat(answeredBy).containsExactlyInAnyOrder("A", "B");

      a.close();
      for (int i = 0; i < 20; i++) {
        assertThat(client.generate(PARAMS).text()).isEqualTo("B");
        try (TokenStream s = client.stream(PARAMS)) {
          assertThat(s.next().text()).isEqualTo("B");
        }
      }
    }
  }

  @Test
  void aSidecarDownFromTheStartIsSkipped() {
    FakeKvantServer down = FakeKvantServer.builder().start();
    String deadTarget = down.target();
    down.close();
    try (FakeKvantServer up = FakeKvantServer.builder().respond("up").start();
        KvantClient client = clientOf(deadTarget, up.target())) {
      for (int i = 0; i < 10; i++) {
        assertThat(client.generate(PARAMS).text()).isEqualTo("up");
      }
    }
  }

  @Test
  void aDnsTargetWorks() {
    try (FakeKvantServer server = FakeKvantServer.builder().respond("dns").start();
        KvantClient client = clientOf("dns:///127.0.0.1:" + server.port())) {
      assertThat(client.generate(PARAMS).text()).isEqualTo("dns");
    }
  }
}
