package io.kvant.client;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.grpc.Server;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.kvant.api.v1.GenerateChunk;
import io.kvant.api.v1.GenerateRequest;
import io.kvant.api.v1.GenerateResponse;
import io.kvant.api.v1.GenerationGrpc;
import io.kvant.client.testing.FakeKvantServer;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(20)
class ErrorsTest {
  private static final GenerateParams PARAMS =
      GenerateParams.builder().prompt("p").requestId("req-err").build();

  /** Accepts every call and never answers. */
  static final class Silent extends GenerationGrpc.GenerationImplBase {
    final CountDownLatch cancelled = new CountDownLatch(1);

    @Override
    public void generate(GenerateRequest request, StreamObserver<GenerateResponse> out) {
      ((ServerCallStreamObserver<GenerateResponse>) out).setOnCancelHandler(cancelled::countDown);
    }

    @Override
    public void generateStream(GenerateRequest request, StreamObserver<GenerateChunk> out) {}
  }

  @Test
  void deadlinesSurfaceAsDeadlineExceeded() throws Exception {
    Server server = TestServers.start(new Silent());
    try (KvantClient client =
        TestServers.client(server).defaultDeadline(Duration.ofMillis(300)).build()) {
      long start = System.nanoTime();
      assertThatThrownBy(() -> client.generate(PARAMS))
          .isInstanceOfSatisfying(
              DeadlineExceededException.class,
              e -> {
                assertThat(e.code()).isEqualTo(Status.Code.DEADLINE_EXCEEDED);
                assertThat(e.requestId()).isEqualTo("req-err");
              });
      assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(3));

      assertThatThrownBy(() -> client.generateAsync(PARAMS).get(5, TimeUnit.SECONDS))
          .isInstanceOf(ExecutionException.class)
          .hasCauseInstanceOf(DeadlineExceededException.class);
      try (TokenStream stream = client.stream(PARAMS)) {
        assertThatThrownBy(stream::hasNext).isInstanceOf(DeadlineExceededException.class);
      }
      CollectingSubscriber<Chunk> s = CollectingSubscriber.oneByOne();
      client.publisher(PARAMS).subscribe(s);
      assertThatThrownBy(() -> s.done.get(5, TimeUnit.SECONDS))
          .hasCauseInstanceOf(DeadlineExceededException.class);
    } finally {
      TestServers.stop(server);
    }
  }

  @Test
  void everyStatusMapsToItsException() {
    Map<Status.Code, Class<? extends KvantException>> expected =
        Map.of(
            Status.Code.INVALID_ARGUMENT, InvalidRequestException.class,
            Status.Code.NOT_FOUND, ModelNotFoundException.class,
            Status.Code.RESOURCE_EXHAUSTED, OverloadedException.class,
            Status.Code.UNAVAILABLE, UnavailableException.class,
            Status.Code.DEADLINE_EXCEEDED, DeadlineExceededException.class,
            Status.Code.CANCELLED, CancelledException.class,
            Status.Code.UNAUTHENTICATED, UnauthenticatedException.class,
            Status.Code.FAILED_PRECONDITION, KvantRpcException.class,
            Status.Code.INTERNAL, KvantRpcException.class);
    try (FakeKvantServer server = FakeKvantServer.builder().start();
        KvantClient client =
            KvantClient.builder()
                .targets(server.target())
                .retryPolicy(RetryPolicy.none())
                .build()) {
      expected.forEach(
          (code, type) -> {
            server.failNext(code, 1);
            assertThatThrownBy(() -> client.generate(PARAMS))
                .isInstanceOfSatisfying(
                    type,
                    e -> {
                      assertThat(e.code()).isEqualTo(code);
                      assertThat(e.description()).isEqualTo("injected by FakeKvantServer");
                      assertThat(e.requestId()).isEqualTo("req-err");
                      assertThat(e.getMessage())
                          .isEqualTo(code + ": injected by FakeKvantServer (request id req-err)");
                    });
          });
    }
  }

  @Test
  void aClosedClientFailsCallsAsUnavailable() {
    FakeKvantServer server = FakeKvantServer.builder().start();
    try (server) {
      KvantClient client = KvantClient.builder().targets(server.target()).build();
      client.close();
      client.close(); // idempotent
      assertThatThrownBy(() -> client.generate(PARAMS)).isInstanceOf(UnavailableException.class);
    }
  }

  @Test
  void cancellingTheFutureCancelsTheCall() throws Exception {
    Silent silent = new Silent();
    Server server = TestServers.start(silent);
    try (KvantClient client = TestServers.client(server).build()) {
      CompletableFuture<Completion> f = client.generateAsync(PARAMS);
      Thread.sleep(100); // let the call reach the server
      f.cancel(true);
      assertThat(f).isCancelled();
      assertThat(silent.cancelled.await(5, TimeUnit.SECONDS)).isTrue();
    } finally {
      TestServers.stop(server);
    }
  }

  @Test
  void anInterruptedBlockingCallThrowsCancelled() throws Exception {
    Server server = TestServers.start(new Silent());
    try (KvantClient client = TestServers.client(server).build()) {
      Thread caller = Thread.currentThread();
      Thread interrupter =
          TestServers.startThread(
              () -> {
                try {
                  Thread.sleep(200);
                } catch (InterruptedException e) {
                  return;
                }
                caller.interrupt();
              });
      assertThatThrownBy(() -> client.generate(PARAMS))
          .isInstanceOf(CancelledException.class)
          .hasCauseInstanceOf(InterruptedException.class);
      assertThat(Thread.interrupted()).isTrue(); // the flag was restored (and is cleared here)
      interrupter.join(5000);
    } finally {
      TestServers.stop(server);
    }
  }
}
