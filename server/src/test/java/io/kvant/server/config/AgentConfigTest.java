package io.kvant.server.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The reload agent's settings: defaults, flags, YAML, and messages naming the bad setting. */
class AgentConfigTest {
  @TempDir Path dir;

  private ServerConfig load(Map<String, String> env, String... args) throws Exception {
    Path model = Files.writeString(dir.resolve("tiny.gguf"), "x");
    List<String> all = new ArrayList<>(List.of("--model", model.toString()));
    all.addAll(List.of(args));
    return new ConfigLoader(env).load(all);
  }

  @Test
  void defaultsAndFlags() throws Exception {
    assertThat(load(Map.of()).agent()).isEqualTo(AgentConfig.defaults());
    AgentConfig a =
        load(
                Map.of("AK", "key", "SK", "secret"),
                "--bucket",
                "s3://models/prod",
                "--agent-channel",
                "stable",
                "--agent-poll-seconds",
                "3",
                "--agent-watch-seconds",
                "60",
                "--agent-auto-swap",
                "false",
                "--swap-policy",
                "pause",
                "--gate-min-top1",
                "0.95",
                "--gate-max-kl",
                "0.05",
                "--rollback-error-rate",
                "0.1",
                "--s3-endpoint",
                "http://127.0.0.1:9000",
                "--s3-access-key-env",
                "AK",
                "--s3-secret-key-env",
                "SK")
            .agent();
    assertThat(a.channel()).contains("stable");
    assertThat(a.pollInterval()).isEqualTo(Duration.ofSeconds(3));
    assertThat(a.watchWindow()).isEqualTo(Duration.ofSeconds(60));
    assertThat(a.autoSwap()).isFalse();
    assertThat(a.swapPolicy()).isEqualTo(io.kvant.reload.SwapMode.PAUSE);
    assertThat(a.gateMinTop1()).isEqualTo(0.95);
    assertThat(a.s3().endpoint()).contains("http://127.0.0.1:9000");
    assertThat(a.s3().accessKey()).contains("key");
  }

  @Test
  void yamlKeys() throws Exception {
    Path yaml =
        Files.writeString(
            dir.resolve("c.yaml"),
            "agent:\n  watch_window_seconds: 30\n  gate:\n    max_kl: 0.2\n  s3:\n    region: eu-west-1\n");
    AgentConfig a = load(Map.of(), "--config", yaml.toString()).agent();
    assertThat(a.watchWindow()).isEqualTo(Duration.ofSeconds(30));
    assertThat(a.gateMaxKl()).isEqualTo(0.2);
    assertThat(a.s3().region()).isEqualTo("eu-west-1");
  }

  @Test
  void badValuesNameTheSetting() {
    String[][] cases = {
      {"--swap-policy", "later", "--swap-policy"},
      {"--gate-min-top1", "1.5", "--gate-min-top1"},
      {"--gate-max-kl", "x", "--gate-max-kl"},
      {"--agent-poll-seconds", "0", "--agent-poll-seconds"},
      {"--agent-auto-swap", "maybe", "--agent-auto-swap"},
      {"--s3-endpoint", "ftp://x", "--s3-endpoint"},
      {"--agent-channel", "../x", "--agent-channel"},
      {"--s3-access-key-env", "MISSING", "--s3-access-key-env"},
    };
    for (String[] c : cases) {
      assertThatThrownBy(() -> load(Map.of(), c[0], c[1]))
          .as(c[0])
          .isInstanceOf(ConfigException.class)
          .hasMessageStartingWith(c[2]);
    }
    assertThat(ConfigLoader.flagHelp())
        .contains("--swap-policy", "--gate-min-top1", "--s3-endpoint");
  }
}
