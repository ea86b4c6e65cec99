package io.kvant.server.grpc;

import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.kvant.api.v1.GetModelStatusRequest;
import io.kvant.api.v1.KvCacheStatus;
import io.kvant.api.v1.ModelAdminGrpc;
import io.kvant.api.v1.ModelEvent;
import io.kvant.api.v1.ModelStatus;
import io.kvant.api.v1.RollbackRequest;
import io.kvant.api.v1.SwapRequest;
import io.kvant.api.v1.SwapResponse;
import io.kvant.api.v1.VersionState;
import io.kvant.api.v1.VersionStatus;
import io.kvant.api.v1.WatchEventsRequest;
import io.kvant.engine.kv.KvCacheManager;
import io.kvant.engine.sched.EngineLoop;
import io.kvant.engine.sched.SchedulerStats;
import io.kvant.reload.SwapMode;
import io.kvant.server.model.EventBus;
import io.kvant.server.model.ModelRegistry;
import io.kvant.server.model.ModelVersion;
import io.kvant.server.model.ServedModel;
import io.kvant.server.model.SwapCoordinator;
import io.kvant.server.model.SwapException;
import io.kvant.server.model.SwapResult;
import io.kvant.server.model.VersionLoader;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.IdentityHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * The {@code kvant.v1.ModelAdmin} service (behind the bearer-token {@link AuthInterceptor}). Swaps
 * by bucket version go to the reload agent when one is configured; swaps by path load the path
 * here.
 */
public final class AdminService extends ModelAdminGrpc.ModelAdminImplBase {
  /** Swaps to a bucket version (the reload agent); empty when no bucket is configured. */
  public interface BucketSwapper {
    SwapResult swapToVersion(String model, String version, SwapMode policy, boolean skipGate)
        throws SwapException;
  }

  private static final int WATCH_BUFFER = 1024;

  private final ModelRegistry models;
  private final EngineLoop loop;
  private final SwapCoordinator swaps;
  private final VersionLoader loader;
  private final EventBus events;
  private final Optional<BucketSwapper> bucket;
  private final SwapMode defaultPolicy;

  public AdminService(
      ModelRegistry models,
      EngineLoop loop,
      SwapCoordinator swaps,
      VersionLoader loader,
      EventBus events,
      Optional<BucketSwapper> bucket,
      SwapMode defaultPolicy) {
    this.models = models;
    this.loop = loop;
    this.swaps = swaps;
    this.loader = loader;
    this.events = events;
    this.bucket = bucket;
    this.defaultPolicy = defaultPolicy;
  }

  /** Ends the call with INVALID_ARGUMENT naming {@code field} when its bytes are not UTF-8. */
  private static boolean invalidUtf8(
      StreamObserver<?> observer, com.google.protobuf.ByteString bytes, String field) {
    try {
      Utf8Fields.require(bytes, field);
      return false;
    } catch (InvalidFieldException e) {
      observer.onError(
          Status.INVALID_ARGUMENT.withDescription(e.getMessage()).asRuntimeException());
      return true;
    }
  }

  @Override
  public void getModelStatus(GetModelStatusRequest request, StreamObserver<ModelStatus> observer) {
    if (invalidUtf8(observer, request.getModelBytes(), "model")) {
      return;
    }
    Optional<ServedModel> m = models.find(request.getModel());
    if (m.isEmpty()) {
      observer.onError(notFound(request.getModel()));
      return;
    }
    observer.onNext(status(m.get()));
    observer.onCompleted();
  }

  ModelStatus status(ServedModel m) {
    ModelStatus.Builder b =
        ModelStatus.newBuilder().setModel(m.name()).setServingVersion(m.serving().id());
    var versions = m.versions();
    // A tensor counts as shared when another held version holds the very same object.
    Map<Object, Integer> holders = new IdentityHashMap<>();
    for (ModelVersion v : versions) {
      for (Object t : v.model().weights().matrices()) {
        holders.merge(t, 1, Integer::sum);
      }
    }
    for (ModelVersion v : versions) {
      long unique = 0;
      long shared = 0;
      for (var t : v.model().weights().matrices()) {
        if (holders.get(t) > 1) {
          shared += t.byteSize();
        } else {
          unique += t.byteSize();
        }
      }
      b.addVersions(
          VersionStatus.newBuilder()
              .setVersion(v.id())
              .setState(
                  switch (v.state()) {
                    case STAGING -> VersionState.VERSION_STATE_STAGING;
                    case SERVING -> VersionState.VERSION_STATE_SERVING;
                    case DRAINING -> VersionState.VERSION_STATE_DRAINING;
                    case STANDBY -> VersionState.VERSION_STATE_STANDBY;
                  })
              .setPinnedRequests(v.pinned())
              .setUniqueBytes(unique)
              .setSharedBytes(shared)
              .setRecipe(v.recipe())
              .setParent(v.parent())
              .setDigest(v.digest()));
    }
    KvCacheManager kv = loop.kvCache();
    SchedulerStats s = loop.stats();
    int total = kv.totalBlocks();
    int free = kv.freeBlocks();
    b.setKvCache(
        KvCacheStatus.newBuilder()
            .setTotalBlocks(total)
            .setFreeBlocks(free)
            .setBlockSize(kv.blockSize())
            .setStorage(KvTypes.name(kv.config().type()))
            .setUsage(total == 0 ? 0 : (double) (total - free) / total)
            .setPrefixHitRatio(s.prefixHitRatio()));
    b.setQueuedRequests(s.waiting()).setRunningRequests(s.running());
    return b.build();
  }

  @Override
  public void swap(SwapRequest request, StreamObserver<SwapResponse> observer) {
    if (invalidUtf8(observer, request.getModelBytes(), "model")
        || invalidUtf8(observer, request.getVersionBytes(), "target.version")
        || invalidUtf8(observer, request.getPathBytes(), "target.path")) {
      return;
    }
    SwapMode policy =
        switch (request.getPolicy()) {
          case SWAP_POLICY_DRAIN -> SwapMode.DRAIN;
          case SWAP_POLICY_IMMEDIATE -> SwapMode.IMMEDIATE;
          case SWAP_POLICY_PAUSE -> SwapMode.PAUSE;
          default -> defaultPolicy;
        };
    if (models.find(request.getModel()).isEmpty()) {
      observer.onError(notFound(request.getModel()));
      return;
    }
    try {
      SwapResult r =
          switch (request.getTargetCase()) {
            case PATH -> {
              if (request.getPath().isBlank()) {
                throw new InvalidFieldException("target.path", "must not be empty");
              }
              Path path;
              try {
                path = Path.of(request.getPath());
              } catch (java.nio.file.InvalidPathException e) {
                throw new InvalidFieldException("target.path", "not a path: " + e.getReason());
              }
              yield swaps.swapToPath(request.getModel(), path, policy, loader);
            }
            case VERSION -> {
              if (request.getVersion().isBlank()) {
                throw new InvalidFieldException("target.version", "must not be empty");
              }
              if (bucket.isEmpty()) {
                throw new SwapException(
                    "no bucket is configured: swap to a version needs --bucket (or swap by path)");
              }
              yield bucket
                  .get()
                  .swapToVersion(
                      request.getModel(),
                      request.getVersion(),
                      policy,
                      request.getSkipQualityGate());
            }
            default -> throw new InvalidFieldException("target", "set version or path");
          };
      observer.onNext(response(r));
      observer.onCompleted();
    } catch (InvalidFieldException e) {
      observer.onError(
          Status.INVALID_ARGUMENT.withDescription(e.getMessage()).asRuntimeException());
    } catch (SwapException e) {
      observer.onError(
          Status.FAILED_PRECONDITION.withDescription(e.getMessage()).asRuntimeException());
    }
  }

  @Override
  public void rollback(RollbackRequest request, StreamObserver<SwapResponse> observer) {
    if (invalidUtf8(observer, request.getModelBytes(), "model")) {
      return;
    }
    if (models.find(request.getModel()).isEmpty()) {
      observer.onError(notFound(request.getModel()));
      return;
    }
    try {
      observer.onNext(response(swaps.rollback(request.getModel())));
      observer.onCompleted();
    } catch (SwapException e) {
      observer.onError(
          Status.FAILED_PRECONDITION.withDescription(e.getMessage()).asRuntimeException());
    }
  }

  @Override
  public void watchEvents(WatchEventsRequest request, StreamObserver<ModelEvent> observer) {
    if (invalidUtf8(observer, request.getModelBytes(), "model")) {
      return;
    }
    ServerCallStreamObserver<ModelEvent> call = (ServerCallStreamObserver<ModelEvent>) observer;
    String filter = request.getModel();
    ArrayDeque<ModelEvent> pending = new ArrayDeque<>();
    Runnable drain =
        () -> {
          synchronized (pending) {
            while (!pending.isEmpty() && call.isReady() && !call.isCancelled()) {
              call.onNext(pending.poll());
            }
          }
        };
    call.setOnReadyHandler(drain);
    Runnable[] unsubscribe = new Runnable[1];
    call.setOnCancelHandler(() -> unsubscribe[0].run());
    unsubscribe[0] =
        events.watch(
            e -> {
              if (!filter.isEmpty() && !filter.equals(e.getModel())) {
                return;
              }
              synchronized (pending) {
                // A watcher that stops reading loses the oldest events, never the server's memory.
                if (pending.size() >= WATCH_BUFFER) {
                  pending.poll();
                }
                pending.add(e);
              }
              drain.run();
            });
  }

  private static SwapResponse response(SwapResult r) {
    return SwapResponse.newBuilder()
        .setServingVersion(r.serving())
        .setPreviousVersion(r.previous())
        .setDurationMs(r.durationMillis())
        .setRecalibratedTensors(r.recalibratedTensors())
        .build();
  }

  /** The tensor objects of a version's weights (identity matters: shared objects are shared). */
  public static java.util.List<io.kvant.engine.tensor.Tensor> tensorsOf(ModelVersion v) {
    return v.model().weights().matrices();
  }

  private static RuntimeException notFound(String model) {
    return Status.NOT_FOUND
        .withDescription("model: no model named '" + model + "' is served")
        .asRuntimeException();
  }
}
