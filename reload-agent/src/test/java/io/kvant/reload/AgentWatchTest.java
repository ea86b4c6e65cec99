package io.kvant.reload;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.reload.bucket.FileBucket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The watch window: keep after it passes, roll back on errors, never re-apply a rolled-back
 * version.
 */
class AgentWatchTest {
  @TempDir Path tmp;
  Fixture fx;
  FileBucket bucket;
  ReloadAgent agent;

  @BeforeEach
  void setUp() throws Exception {
    fx = new Fixture(tmp);
    bucket = new FileBucket(java.nio.file.Files.createDirectories(tmp.resolve("bucket")));
    agent = fx.agent(bucket, fx.settings().withRollback(0.2, 10));
    fx.publish(bucket, "v1", Optional.empty(), "none", fx.tensors());
    assertThat(agent.pollOnce()).contains("v1");
    assertThat(agent.watching()).contains("v1");
    assertThat(fx.target.standby.id()).isEqualTo("base");
  }

  @AfterEach
  void tearDown() throws Exception {
    agent.close();
    fx.close();
  }

  @Test
  void keepsTheVersionWhenTheWindowPasses() {
    fx.clock.advance(Duration.ofSeconds(59));
    agent.pollOnce();
    assertThat(fx.of(Step.KEPT)).isEmpty();
    assertThat(fx.target.standby).isNotNull();
    fx.clock.advance(Duration.ofSeconds(1));
    agent.pollOnce();
    assertThat(fx.of(Step.KEPT))
        .singleElement()
        .satisfies(e -> assertThat(e.version()).isEqualTo("v1"));
    assertThat(fx.target.standby).isNull();
    assertThat(fx.target.drops).isEqualTo(1);
    assertThat(agent.watching()).isEmpty();
  }

  @Test
  void rollsBackByItselfWhenTheErrorRateIsTooHigh() {
    for (int i = 0; i < 7; i++) {
      agent.recordOutcome("v1", false);
    }
    for (int i = 0; i < 2; i++) {
      agent.recordOutcome("v1", true);
    }
    agent.recordOutcome("base", true); // other versions' outcomes do not count
    agent.pollOnce();
    assertThat(fx.target.serving.id()).isEqualTo("v1"); // 2 of 9: too few requests yet
    agent.recordOutcome("v1", true); // 3 of 10 = 0.3 > 0.2
    agent.pollOnce();
    assertThat(fx.target.serving.id()).isEqualTo("base");
    assertThat(fx.of(Step.REJECTED).getLast().attrs()).containsEntry("reason", "error_rate");
    // Polling does not swap the rolled-back version in again.
    assertThat(agent.pollOnce()).isEmpty();
    assertThat(fx.target.serving.id()).isEqualTo("base");
  }

  @Test
  void anOperatorRollbackIsRespected() throws Exception {
    fx.target.rollback();
    assertThat(agent.pollOnce()).isEmpty();
    assertThat(fx.target.serving.id()).isEqualTo("base");
    assertThat(agent.watching()).isEmpty();
    // A newer version is still picked up.
    fx.publish(
        bucket,
        "v2",
        Optional.of("v1"),
        "none",
        Map.of(AgentFolderTest.Q0, Fixture.scaled(fx.matrix(AgentFolderTest.Q0), 2f)));
    assertThat(agent.pollOnce()).contains("v2");
  }
}
