package io.kvant.client;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.grpc.InsecureServerCredentials;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.kvant.api.v1.GenerateRequest;
import io.kvant.api.v1.GenerateResponse;
import io.kvant.api.v1.GenerationGrpc;
import io.kvant.api.v1.GetModelStatusRequest;
import io.kvant.api.v1.ModelAdminGrpc;
import io.kvant.api.v1.ModelEvent;
import io.kvant.api.v1.ModelStatus;
import io.kvant.api.v1.RollbackRequest;
import io.kvant.api.v1.SwapPolicy;
import io.kvant.api.v1.SwapRequest;
import io.kvant.api.v1.SwapResponse;
import io.kvant.api.v1.WatchEventsRequest;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(20)
class AdminTest {
  private static final String TOKEN = "s3cret-token";
  private static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

  /** Refuses calls without the right bearer token, as the sidecar does; records what it saw. */
  static final class RequireToken implements ServerInterceptor {
    final List<String> seen = new CopyOnWriteArrayList<>();

    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(
        ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
      String auth = headers.get(AUTHORIZATION);
      seen.add(String.valueOf(auth));
      if (!("Bearer " + TOKEN).equals(auth)) {
        call.close(Status.UNAUTHENTICATED.withDescription("bad or missing token"), new Metadata());
        return new ServerCall.Listener<>() {};
      }
      return next.startCall(call, headers);
    }
  }

  /** A scripted ModelAdmin. */
  static final class Admin extends ModelAdminGrpc.ModelAdminImplBase {
    final List<Object> requests = new CopyOnWriteArrayList<>();
    final AtomicInteger swapCalls = new AtomicInteger();
    final CountDownLatch watchCancelled = new CountDownLatch(1);
    volatile boolean failSwaps;

    @Override
    public void getModelStatus(GetModelStatusRequest request, StreamObserver<ModelStatus> out) {
      requests.add(request);
      if (request.getModel().equals("nope")) {
        out.onError(Status.NOT_FOUND.withDescription("model: unknown").asRuntimeException());
        return;
      }
      out.onNext(
          ModelStatus.newBuilder()
              .setModel("m")
              .setServingVersion("v2")
              .setQueuedRequests(3)
              .build());
      out.onCompleted();
    }

    @Override
    public void swap(SwapRequest request, StreamObserver<SwapResponse> out) {
      requests.add(request);
      swapCalls.incrementAndGet();
      if (failSwaps) {
        out.onError(Status.UNAVAILABLE.asRuntimeException());
        return;
      }
      out.onNext(
          SwapResponse.newBuilder()
              .setServingVersion(
                  request.getVersion().isEmpty() ? "from-path" : request.getVersion())
              .setPreviousVersion("v2")
              .build());
      out.onCompleted();
    }

    @Override
    public void rollback(RollbackRequest request, StreamObserver<SwapResponse> out) {
      requests.add(request);
      out.onError(
          Status.FAILED_PRECONDITION.withDescription("no parent held").asRuntimeException());
    }

    @Override
    public void watchEvents(WatchEventsRequest request, StreamObserver<ModelEvent> out) {
      ((ServerCallStreamObserver<ModelEvent>) out).setOnCancelHandler(watchCancelled::countDown);
      for (ModelEvent.Kind kind :
          List.of(ModelEvent.Kind.DETECTED, ModelEvent.Kind.VERIFIED, ModelEvent.Kind.SWAPPED)) {
        out.onNext(ModelEvent.newBuilder().setKind(kind).setModel(request.getModel()).build());
      }
      // Stays open, as a real watch does.
    }
  }

  /** A Generation service behind the same token check. */
  static final class Gen extends GenerationGrpc.GenerationImplBase {
    @Override
    public void generate(GenerateRequest request, StreamObserver<GenerateResponse> out) {
      out.onNext(GenerateResponse.newBuilder().setText("authorized").build());
      out.onCompleted();
    }
  }

  private final RequireToken auth = new RequireToken();
  private final Admin admin = new Admin();
  private Server server;

  @BeforeEach
  void start() {
    server =
        TestServers.start(
            InsecureServerCredentials.create(),
            ServerInterceptors.intercept(admin, auth),
            ServerInterceptors.intercept(new Gen(), auth));
  }

  @AfterEach
  void stop() throws InterruptedException {
    TestServers.stop(server);
  }

  private KvantAdmin adminClient(String token) {
    return KvantAdmin.builder()
        .targets(TestServers.target(server))
        .bearerToken(token)
        .retryPolicy(TestServers.fastRetries(4))
        .defaultDeadline(Duration.ofSeconds(10))
        .build();
  }

  @Test
  void aTokenIsRequiredToBuild() {
    assertThatThrownBy(() -> KvantAdmin.builder().targets(TestServers.target(server)).build())
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("bearerToken");
    assertThatThrownBy(() -> KvantAdmin.builder().bearerToken("has space"))
        .isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void everyAdminCallCarriesTheToken() throws Exception {
    try (KvantAdmin client = adminClient(TOKEN)) {
      ModelStatus status = client.status("m");
      assertThat(status.getServingVersion()).isEqualTo("v2");
      assertThat(status.getQueuedRequests()).isEqualTo(3);

      assertThat(client.swapToVersion("m", "v3", SwapPolicy.SWAP_POLICY_DRAIN).getServingVersion())
          .isEqualTo("v3");
      assertThat(client.swapToPath("", "/models/x.gguf", SwapPolicy.SWAP_POLICY_IMMEDIATE))
          .extracting(SwapResponse::getServingVersion)
          .isEqualTo("from-path");
      assertThat(admin.requests)
          .contains(
              SwapRequest.newBuilder()
                  .setModel("m")
                  .setVersion("v3")
                  .setPolicy(SwapPolicy.SWAP_POLICY_DRAIN)
                  .build());

      assertThatThrownBy(() -> client.rollback("m"))
          .isInstanceOfSatisfying(
              KvantRpcException.class,
              e -> {
                assertThat(e.code()).isEqualTo(Status.Code.FAILED_PRECONDITION);
                assertThat(e.description()).isEqualTo("no parent held");
              });
      assertThatThrownBy(() -> client.status("nope")).isInstanceOf(ModelNotFoundException.class);

      try (ResponseStream<ModelEvent> events = client.watchEvents("m")) {
        assertThat(events.next().getKind()).isEqualTo(ModelEvent.Kind.DETECTED);
        assertThat(events.next().getKind()).isEqualTo(ModelEvent.Kind.VERIFIED);
        assertThat(events.next().getKind()).isEqualTo(ModelEvent.Kind.SWAPPED);
      }
      assertThat(admin.watchCancelled.await(5, TimeUnit.SECONDS)).isTrue();
    }
    assertThat(auth.seen).hasSize(6).allMatch(h -> h.equals("Bearer " + TOKEN));
  }

  @Test
  void aWrongOrMissingTokenIsUnauthenticated() {
    try (KvantAdmin client = adminClient("wrong")) {
      assertThatThrownBy(() -> client.status("m"))
          .isInstanceOfSatisfying(
              UnauthenticatedException.class,
              e -> assertThat(e.description()).isEqualTo("bad or missing token"));
    }
    GenerateParams params = GenerateParams.builder().prompt("x").build();
    try (KvantClient noToken = TestServers.client(server).build()) {
      assertThatThrownBy(() -> noToken.generate(params))
          .isInstanceOf(UnauthenticatedException.class);
    }
    try (KvantClient withToken = TestServers.client(server).bearerToken(TOKEN).build()) {
      assertThat(withToken.generate(params).text()).isEqualTo("authorized");
    }
    assertThat(auth.seen).containsExactly("Bearer wrong", "null", "Bearer " + TOKEN);
  }

  @Test
  void swapsAreNeverRetried() {
    admin.failSwaps = true;
    try (KvantAdmin client = adminClient(TOKEN)) {
      assertThatThrownBy(() -> client.swapToVersion("m", "v9", SwapPolicy.SWAP_POLICY_UNSPECIFIED))
          .isInstanceOf(UnavailableException.class);
      assertThatThrownBy(() -> client.swap(SwapRequest.newBuilder().setModel("m").build()))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageStartingWith("target:");
    }
    assertThat(admin.swapCalls).hasValue(1);
  }
}
