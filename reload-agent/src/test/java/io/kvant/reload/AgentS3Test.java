package io.kvant.reload;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kvant.reload.bucket.Buckets;
import io.kvant.reload.bucket.S3Bucket;
import io.kvant.reload.testing.MotoServer;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The same pipeline over a real S3 API (moto on 127.0.0.1): listing with ETags, downloads, deltas.
 */
class AgentS3Test {
  @TempDir Path tmp;

  @Test
  void publishesPollsAndSwapsOverS3() throws Exception {
    try (MotoServer s3 = MotoServer.start(tmp.resolve("moto"));
        Fixture fx = new Fixture(tmp);
        S3Bucket bucket = s3.bucket("models")) {
      ReloadAgent agent = fx.agent(bucket, fx.settings());
      assertThat(agent.pollOnce()).isEmpty();
      fx.publish(bucket, "v1", Optional.empty(), "w8", fx.tensors());
      assertThat(bucket.list("stories/versions/v1/", 10))
          .extracting(o -> o.key())
          .containsExactly(
              "stories/versions/v1/manifest.json", "stories/versions/v1/model.safetensors");
      assertThat(bucket.list("stories/", 10)).allSatisfy(o -> assertThat(o.etag()).isNotEmpty());
      assertThat(agent.pollOnce()).contains("v1");

      String q = AgentFolderTest.Q0;
      fx.publish(
          bucket, "v2", Optional.of("v1"), "w8", Map.of(q, Fixture.scaled(fx.matrix(q), 1.1f)));
      assertThat(agent.pollOnce()).contains("v2");
      assertThat(fx.of(Step.RECALIBRATED).getLast().attrs())
          .containsEntry("recalibrated_tensors", "1");

      // A file replaced after the manifest was written: digest mismatch over S3 too.
      fx.publish(
          bucket, "v3", Optional.of("v2"), "w8", Map.of(q, Fixture.scaled(fx.matrix(q), 1.2f)));
      Path other = tmp.resolve("other.safetensors");
      Publisher.writeTensors(other, Map.of(q, Fixture.scaled(fx.matrix(q), 1.3f)));
      bucket.put("stories/versions/v3/model.safetensors", other);
      assertThat(agent.pollOnce()).isEmpty();
      assertThat(fx.of(Step.REJECTED).getLast().attrs()).containsEntry("reason", "digest_mismatch");
      assertThat(fx.target.serving.id()).isEqualTo("v2");
      agent.close();

      // The URI form the server uses opens the same bucket.
      try (var viaUri = Buckets.open("s3://models", s3.settings())) {
        assertThat(viaUri.stat("stories/versions/v2/manifest.json")).isPresent();
        viaUri.requireExists();
      }
      // A mistyped bucket fails at start, naming it, and is not created (issue 17, item 2).
      try (var typo = Buckets.open("s3://modles", s3.settings())) {
        ReloadAgent a = fx.agent(bucket, fx.settings());
        a.close();
        ReloadAgent wrong =
            new ReloadAgent(
                fx.settings(),
                typo,
                fx.target,
                (st, v, m, at) -> {},
                fx.clock,
                PollScheduler.manual(),
                fx.pool,
                new RecipeRequantizer());
        assertThatThrownBy(wrong::start)
            .isInstanceOf(java.io.FileNotFoundException.class)
            .hasMessageContaining("s3://modles: no such bucket");
        wrong.close();
        assertThatThrownBy(typo::requireExists).hasMessageContaining("no such bucket");
      }
    }
  }
}
