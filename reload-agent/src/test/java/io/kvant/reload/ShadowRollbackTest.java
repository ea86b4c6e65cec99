package io.kvant.reload;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.engine.model.Weight;
import io.kvant.engine.tensor.Tensor;
import io.kvant.reload.bucket.FileBucket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 17, item 6: a version that passes the static gate but drifts on live traffic is rolled back
 * by the shadow check. The version changes only the embeddings of tokens that none of the gate's
 * texts contain, so the gate sees identical logits; live requests made of those tokens disagree.
 */
class ShadowRollbackTest {
  @TempDir Path tmp;

  /**
   * Runs the tasks the test thread schedules (the shadow check and the rollback it triggers) at
   * once, on the test thread. Nudges from the bucket's folder watcher are dropped: the test polls
   * by itself, and a poll running on the watcher's thread would hold the pipeline when the test
   * polls.
   */
  static PollScheduler inline() {
    Thread owner = Thread.currentThread();
    return new PollScheduler() {
      @Override
      public void every(Duration period, Runnable task) {}

      @Override
      public void soon(Runnable task) {
        if (Thread.currentThread() == owner) {
          task.run();
        }
      }

      @Override
      public void close() {}
    };
  }

  @Test
  void aVersionThatDriftsOnLiveTrafficIsRolledBack() throws Exception {
    try (Fixture fx = new Fixture(tmp)) {
      var tok = fx.model.tokenizer();
      // Every token the gate reads (golden prompts and held-out text, as the gate cuts them).
      Set<Integer> seen = new HashSet<>();
      List<String> gateTexts = new ArrayList<>(AgentSettings.BUILTIN_GOLDEN);
      gateTexts.addAll(AgentSettings.BUILTIN_HELD_OUT);
      for (int[] ids : VersionBuilder.tokenize(tok, gateTexts, fx.target.serving())) {
        for (int id : ids) {
          seen.add(id);
        }
      }
      List<Integer> unseen = new ArrayList<>();
      for (int id = 3; id < fx.model.config().vocabSize(); id++) {
        if (!seen.contains(id) && !tok.isControl(id)) {
          unseen.add(id);
        }
      }
      assertThat(unseen).hasSizeGreaterThan(64);
      Map<String, Weight> t = fx.tensors();
      Tensor emb = Fixture.tensor(t.get("token_embd.weight"));
      float[] v = TensorData.values(emb);
      Random r = new Random(7);
      for (int id : unseen) {
        for (int c = 0; c < emb.cols(); c++) {
          v[id * emb.cols() + c] = (float) r.nextGaussian();
        }
      }
      t.put("token_embd.weight", Fixture.matrix(v, emb.rows(), emb.cols()));

      FileBucket bucket = new FileBucket(Files.createDirectories(tmp.resolve("bucket")));
      GateSettings g = new GateSettings(0.9, 0.1, 1.10, 0.15, 1, 32, 0.8, 0.25);
      ReloadAgent agent =
          new ReloadAgent(
              fx.settings().withGate(g),
              bucket,
              fx.target,
              (step, ver, msg, attrs) -> fx.events.add(new Fixture.Event(step, ver, msg, attrs)),
              fx.clock,
              inline(),
              fx.pool,
              new RecipeRequantizer());
      agent.start();
      fx.publish(bucket, "v1", Optional.empty(), "none", t);
      // The static gate passes: on its texts the two versions are the same.
      assertThat(agent.pollOnce()).contains("v1");
      assertThat(fx.of(Step.GATE_PASSED).getLast().attrs()).containsKey("kl_vs_serving");

      // Live traffic in the gate's style: no drift, still serving v1.
      int[] usual =
          tok.encode(
              AgentSettings.BUILTIN_GOLDEN.get(0) + " " + AgentSettings.BUILTIN_GOLDEN.get(1),
              true);
      agent.recordSample("v1", usual);
      agent.recordSample("v1", usual);
      assertThat(fx.target.serving.id()).isEqualTo("v1");
      assertThat(fx.of(Step.REJECTED)).isEmpty();

      // Live traffic made of the changed tokens: drift, rolled back by itself.
      int[] odd = new int[41];
      odd[0] = tok.bos();
      for (int i = 1; i < odd.length; i++) {
        odd[i] = unseen.get(i - 1);
      }
      agent.recordSample("v1", odd);
      assertThat(fx.target.serving.id()).isEqualTo("base");
      var rejected = fx.of(Step.REJECTED).getLast();
      assertThat(rejected.version()).isEqualTo("v1");
      assertThat(rejected.attrs()).containsEntry("reason", "shadow_drift");
      assertThat(rejected.message()).contains("top-1 agreement", "rolled back automatically");
      assertThat(agent.lastRejection()).startsWith("shadow_drift: ");
      // Not taken again by polling.
      assertThat(agent.pollOnce()).isEmpty();
      assertThat(Files.readString(tmp.resolve("staging").resolve(Staging.COMMITTED)).strip())
          .isEqualTo("base");
      agent.close();
    }
  }
}
