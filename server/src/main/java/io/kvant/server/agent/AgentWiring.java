package io.kvant.server.agent;

import io.kvant.api.v1.ModelEvent;
import io.kvant.engine.forward.ComputeBackend;
import io.kvant.engine.tensor.ComputePool;
import io.kvant.reload.AgentSettings;
import io.kvant.reload.GateSettings;
import io.kvant.reload.PollScheduler;
import io.kvant.reload.RecipeRequantizer;
import io.kvant.reload.Rejection;
import io.kvant.reload.ReloadAgent;
import io.kvant.reload.StagedVersion;
import io.kvant.reload.Step;
import io.kvant.reload.SwapMode;
import io.kvant.reload.bucket.Bucket;
import io.kvant.reload.bucket.Buckets;
import io.kvant.reload.bucket.S3Settings;
import io.kvant.server.config.AgentConfig;
import io.kvant.server.grpc.AdminService;
import io.kvant.server.model.EventBus;
import io.kvant.server.model.ServedModel;
import io.kvant.server.model.SwapCoordinator;
import io.kvant.server.model.SwapException;
import io.kvant.server.model.SwapResult;
import java.io.IOException;
import java.net.URI;
import java.time.Clock;

/**
 * Builds the reload agent from the server's config and connects it: events to the {@link EventBus}
 * (WatchEvents, metrics, logs), swaps through the {@link SwapCoordinator}, request outcomes from
 * the served model, and Swap-by-version RPCs from the admin service.
 */
public final class AgentWiring implements AdminService.BucketSwapper, AutoCloseable {
  private final ReloadAgent agent;
  private final Bucket bucket;
  private final ServedModel model;
  private final Clock clock;

  private AgentWiring(ReloadAgent agent, Bucket bucket, ServedModel model, Clock clock) {
    this.agent = agent;
    this.bucket = bucket;
    this.model = model;
    this.clock = clock;
  }

  /** Opens the bucket and creates (but does not start) the agent. */
  public static AgentWiring create(
      String bucketUri,
      AgentConfig c,
      ServedModel model,
      SwapCoordinator swaps,
      EventBus events,
      ComputePool pool,
      ComputeBackend backend,
      Clock clock) {
    AgentConfig.S3Config s3 = c.s3();
    Bucket bucket =
        Buckets.open(
            bucketUri,
            new S3Settings(
                s3.endpoint().map(URI::create),
                s3.region(),
                s3.pathStyle(),
                s3.accessKey(),
                s3.secretKey()));
    AgentSettings settings =
        new AgentSettings(
            c.bucketModel().orElse(model.name()),
            c.channel(),
            c.pollInterval(),
            c.stagingDir(),
            c.qbomDir(),
            c.watchWindow(),
            new GateSettings(
                c.gateMinTop1(),
                c.gateMaxKl(),
                c.gate().maxPplRatio(),
                c.gate().maxKlVsServing(),
                c.gate().shadowEvery(),
                c.gate().shadowMinPositions(),
                c.gate().shadowMinTop1(),
                c.gate().shadowMaxKl()),
            c.rollbackErrorRate(),
            c.rollbackMinRequests(),
            c.swapPolicy(),
            c.autoSwap(),
            AgentSettings.BUILTIN_GOLDEN,
            64L << 30);
    ReloadAgent agent =
        new ReloadAgent(
            settings,
            bucket,
            new ServerSwapTarget(model, swaps, backend),
            (step, version, message, attrs) ->
                events.publish(kind(step), model.name(), version, message, attrs),
            clock,
            PollScheduler.singleThread("kvant-reload-agent"),
            pool,
            new RecipeRequantizer());
    model.onOutcome(agent::recordOutcome);
    model.onSample(agent::recordSample);
    return new AgentWiring(agent, bucket, model, clock);
  }

  /** The API's event kind of an agent step (a switch: a new step does not compile unmapped). */
  static ModelEvent.Kind kind(Step step) {
    return switch (step) {
      case DETECTED -> ModelEvent.Kind.DETECTED;
      case DOWNLOADED -> ModelEvent.Kind.DOWNLOADED;
      case VERIFIED -> ModelEvent.Kind.VERIFIED;
      case RECALIBRATED -> ModelEvent.Kind.RECALIBRATED;
      case GATE_PASSED -> ModelEvent.Kind.GATE_PASSED;
      case STAGED -> ModelEvent.Kind.STAGED;
      case KEPT -> ModelEvent.Kind.KEPT;
      case REJECTED -> ModelEvent.Kind.REJECTED;
    };
  }

  /** Checks the bucket and claims the staging area (see {@link ReloadAgent#prepare}). */
  public void prepare() throws IOException {
    agent.prepare();
  }

  /** Restores the committed version (see {@link ReloadAgent#resume}). */
  public void resume() {
    agent.resume();
  }

  /** Cleans the staging area and starts polling. */
  public void start() throws IOException {
    agent.start();
  }

  public ReloadAgent agent() {
    return agent;
  }

  @Override
  public SwapResult swapToVersion(
      String modelName, String version, SwapMode policy, boolean skipGate) throws SwapException {
    if (!modelName.isEmpty() && !modelName.equals(model.name())) {
      throw new SwapException("the reload agent serves model '" + model.name() + "' only");
    }
    long start = clock.millis();
    String previous = model.serving().id();
    try {
      StagedVersion v = agent.swapTo(version, policy == null ? null : policy, skipGate);
      return new SwapResult(v.id(), previous, clock.millis() - start, v.recalibrated());
    } catch (Rejection e) {
      throw new SwapException(e.reason() + ": " + e.getMessage(), e);
    }
  }

  @Override
  public void close() {
    agent.close();
    bucket.close();
  }
}
