package io.kvant.reload;

import io.kvant.engine.tensor.ComputePool;
import io.kvant.reload.bucket.Bucket;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.Comparator;
import java.util.stream.Stream;

/**
 * What a server's reload agent does with a bucket version, without a server: download, verify sizes
 * and digests, read and check every tensor, diff against the base by digest, re-quantize, apply
 * encodings and run the quality gate, against a given serving model. It is the agent's own pipeline
 * ({@link ReloadAgent#verify}) over a target that refuses swaps, so a version it accepts is one a
 * server serving {@code base} accepts (with the default gate), and a refusal carries the reason a
 * server would give. {@code kvant agent publish} runs it before the manifest is written, {@code
 * kvant agent verify} on a version already in a bucket.
 */
public final class VersionCheck {
  private final ServingView base;
  private final ComputePool pool;
  private final Path work;
  private final Clock clock;

  /**
   * @param base the model the version will be served on (its shapes, tokenizer and weights are the
   *     diff base of a full version)
   * @param work a folder for temporary staging areas (each check makes and removes its own)
   */
  public VersionCheck(ServingView base, ComputePool pool, Path work, Clock clock) {
    this.base = base;
    this.pool = pool;
    this.work = work;
    this.clock = clock;
  }

  /**
   * Runs the pipeline on {@code bucket}'s {@code model/versions/version}.
   *
   * @throws Rejection with the reason and message a server's agent would report
   */
  public StagedVersion verify(Bucket bucket, String model, String version)
      throws Rejection, IOException {
    Files.createDirectories(work);
    Path staging = Files.createTempDirectory(work, "kvant-check");
    try (ReloadAgent agent =
        new ReloadAgent(
            AgentSettings.defaults(model, staging),
            bucket,
            new ReadOnlyTarget(base),
            (step, v, message, attributes) -> {},
            clock,
            PollScheduler.manual(),
            pool,
            new RecipeRequantizer())) {
      agent.start();
      return agent.verify(version);
    } finally {
      try (Stream<Path> s = Files.walk(staging)) {
        s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
      }
    }
  }

  /** A serving model that refuses every swap: the check never serves what it verifies. */
  private record ReadOnlyTarget(ServingView serving) implements SwapTarget {
    @Override
    public void swap(StagedVersion v, SwapMode mode, long startMillis) throws SwapRefusedException {
      throw new SwapRefusedException("a version check does not swap");
    }

    @Override
    public void rollback() throws SwapRefusedException {
      throw new SwapRefusedException("a version check does not swap");
    }

    @Override
    public void dropStandby() {}
  }
}
