package io.kvant.client;

import io.kvant.api.v1.GetModelStatusRequest;
import io.kvant.api.v1.ModelAdminGrpc;
import io.kvant.api.v1.ModelEvent;
import io.kvant.api.v1.ModelStatus;
import io.kvant.api.v1.RollbackRequest;
import io.kvant.api.v1.SwapPolicy;
import io.kvant.api.v1.SwapRequest;
import io.kvant.api.v1.SwapResponse;
import io.kvant.api.v1.WatchEventsRequest;
import java.util.Objects;
import java.util.function.Function;

/** The {@link KvantAdmin} over a {@link Transport}. */
final class DefaultKvantAdmin implements KvantAdmin {
  private static final int EVENT_BUFFER = 16;

  private final Transport transport;

  DefaultKvantAdmin(Transport transport) {
    this.transport = transport;
  }

  @Override
  public ModelStatus status(String model) {
    Objects.requireNonNull(model, "model");
    return transport.blockingUnary(
        ModelAdminGrpc.getGetModelStatusMethod(),
        GetModelStatusRequest.newBuilder().setModel(model).build(),
        Transport.requestIdOr(null),
        true,
        Function.identity());
  }

  @Override
  public SwapResponse swapToVersion(String model, String version, SwapPolicy policy) {
    return swap(
        SwapRequest.newBuilder()
            .setModel(Objects.requireNonNull(model, "model"))
            .setVersion(Objects.requireNonNull(version, "version"))
            .setPolicy(Objects.requireNonNull(policy, "policy"))
            .build());
  }

  @Override
  public SwapResponse swapToPath(String model, String path, SwapPolicy policy) {
    return swap(
        SwapRequest.newBuilder()
            .setModel(Objects.requireNonNull(model, "model"))
            .setPath(Objects.requireNonNull(path, "path"))
            .setPolicy(Objects.requireNonNull(policy, "policy"))
            .build());
  }

  @Override
  public SwapResponse swap(SwapRequest request) {
    boolean hasTarget =
        switch (request.getTargetCase()) {
          case VERSION -> !request.getVersion().isEmpty();
          case PATH -> !request.getPath().isEmpty();
          case TARGET_NOT_SET -> false;
        };
    if (!hasTarget) {
      throw new IllegalArgumentException("target: set exactly one of version and path, non-empty");
    }
    // Not retried: a swap that failed with UNAVAILABLE may have happened.
    return transport.blockingUnary(
        ModelAdminGrpc.getSwapMethod(),
        request,
        Transport.requestIdOr(null),
        false,
        Function.identity());
  }

  @Override
  public SwapResponse rollback(String model) {
    return transport.blockingUnary(
        ModelAdminGrpc.getRollbackMethod(),
        RollbackRequest.newBuilder().setModel(Objects.requireNonNull(model, "model")).build(),
        Transport.requestIdOr(null),
        false,
        Function.identity());
  }

  @Override
  public ResponseStream<ModelEvent> watchEvents(String model) {
    String requestId = Transport.requestIdOr(null);
    BlockingStream<ModelEvent, ModelEvent> stream =
        new BlockingStream<>(Function.identity(), EVENT_BUFFER);
    stream.start(
        new StreamCall<>(
            transport,
            ModelAdminGrpc.getWatchEventsMethod(),
            WatchEventsRequest.newBuilder()
                .setModel(Objects.requireNonNull(model, "model"))
                .build(),
            requestId,
            transport.newDeadline(false),
            transport.retryPolicy(),
            stream));
    return stream;
  }

  @Override
  public void close() {
    transport.close();
  }
}
