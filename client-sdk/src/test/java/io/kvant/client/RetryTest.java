package io.kvant.client;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.grpc.Server;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import io.kvant.api.v1.GenerateChunk;
import io.kvant.api.v1.GenerateRequest;
import io.kvant.api.v1.GenerationGrpc;
import io.kvant.client.testing.FakeKvantServer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(20)
class RetryTest {
  private static final GenerateParams PARAMS =
      GenerateParams.builder().prompt("one two three").requestId("r-7").build();
  private final List<AutoCloseable> toClose = new ArrayList<>();

  @AfterEach
  void closeAll() throws Exception {
    for (int i = toClose.size() - 1; i >= 0; i--) {
      toClose.get(i).close();
    }
  }

  private FakeKvantServer fake() {
    FakeKvantServer s = FakeKvantServer.builder().respond(p -> "echo " + p).start();
    toClose.add(s);
    return s;
  }

  private KvantClient client(String target, RetryPolicy policy) {
    KvantClient c =
        KvantClient.builder()
            .targets(target)
            .defaultDeadline(Duration.ofSeconds(10))
            .retryPolicy(policy)
            .build();
    toClose.add(c);
    return c;
  }

  /** Streams two chunks, then fails with UNAVAILABLE; counts attempts. */
  static final class BreaksMidStream extends GenerationGrpc.GenerationImplBase {
    final AtomicInteger attempts = new AtomicInteger();

    @Override
    public void generateStream(GenerateRequest request, StreamObserver<GenerateChunk> out) {
      attempts.incrementAndGet();
      out.onNext(GenerateChunk.newBuilder().setText("Hel").build());
      out.onNext(GenerateChunk.newBuilder().setText("lo").build());
      out.onError(Status.UNAVAILABLE.withDescription("sidecar went away").asRuntimeException());
    }
  }

  @Test
  void aStreamFailingBeforeItsFirstChunkIsRetriedAndDeliveredWhole() {
    FakeKvantServer server = fake();
    server.failNext(Status.Code.UNAVAILABLE, 2);
    KvantClient client = client(server.target(), TestServers.fastRetries(4));

    List<String> texts = new ArrayList<>();
    try (TokenStream stream = client.stream(PARAMS)) {
      stream.forEachRemaining(c -> texts.add(c.text()));
    }

    assertThat(String.join("", texts)).isEqualTo("echo one two three");
    assertThat(texts).containsExactly("echo", " one", " two", " three");
    assertThat(server.requests()).hasSize(3);
    assertThat(server.requests()).allMatch(r -> r.requestIdHeader().equals("r-7"));
  }

  @Test
  void aPublisherIsRetriedBeforeItsFirstChunkToo() throws Exception {
    FakeKvantServer server = fake();
    server.failNext(Status.Code.RESOURCE_EXHAUSTED, 2);
    KvantClient client = client(server.target(), TestServers.fastRetries(4));

    CollectingSubscriber<Chunk> s = CollectingSubscriber.oneByOne();
    client.publisher(PARAMS).subscribe(s);

    assertThat(
            s.done.get(5, TimeUnit.SECONDS).stream().map(Chunk::text).collect(Collectors.joining()))
        .isEqualTo("echo one two three");
    assertThat(server.requests()).hasSize(3);
  }

  @Test
  void aStreamThatBreaksAfterChunksSurfacesTheErrorWithoutReplaying() throws Exception {
    BreaksMidStream service = new BreaksMidStream();
    Server server = TestServers.start(service);
    toClose.add(() -> TestServers.stop(server));
    KvantClient client = client(TestServers.target(server), TestServers.fastRetries(4));

    List<String> seen = new ArrayList<>();
    try (TokenStream stream = client.stream(PARAMS)) {
      assertThatThrownBy(
              () -> {
                while (stream.hasNext()) {
                  seen.add(stream.next().text());
                }
              })
          .isInstanceOfSatisfying(
              UnavailableException.class,
              e -> {
                assertThat(e.description()).isEqualTo("sidecar went away");
                assertThat(e.requestId()).isEqualTo("r-7");
              });
      // The failure is sticky: asking again does not restart anything.
      assertThatThrownBy(stream::hasNext).isInstanceOf(UnavailableException.class);
    }
    assertThat(seen).containsExactly("Hel", "lo");

    CollectingSubscriber<Chunk> s = CollectingSubscriber.oneByOne();
    client.publisher(PARAMS).subscribe(s);
    assertThatThrownBy(() -> s.done.get(5, TimeUnit.SECONDS))
        .isInstanceOf(ExecutionException.class)
        .hasCauseInstanceOf(UnavailableException.class);
    assertThat(s.items).extracting(Chunk::text).containsExactly("Hel", "lo");
    assertThat(service.attempts).hasValue(2); // one per call: nothing retried
  }

  @Test
  void unaryCallsAreRetriedUntilMaxAttempts() {
    FakeKvantServer server = fake();
    KvantClient client = client(server.target(), TestServers.fastRetries(3));

    server.failNext(Status.Code.UNAVAILABLE, 2);
    assertThat(client.generate(PARAMS).text()).isEqualTo("echo one two three");
    assertThat(server.requests()).hasSize(3);

    server.clearRequests();
    server.failNext(Status.Code.UNAVAILABLE, 10);
    assertThatThrownBy(() -> client.generate(PARAMS)).isInstanceOf(UnavailableException.class);
    assertThat(server.requests()).hasSize(3);

    server.clearRequests();
    server.failNext(Status.Code.RESOURCE_EXHAUSTED, 10);
    assertThatThrownBy(() -> client.generateAsync(PARAMS).join())
        .hasCauseInstanceOf(OverloadedException.class);
    assertThat(server.requests()).hasSize(3);
  }

  @Test
  void otherCodesAreNotRetried() {
    FakeKvantServer server = fake();
    KvantClient client = client(server.target(), TestServers.fastRetries(4));
    server.failNext(Status.Code.INVALID_ARGUMENT, 1);
    assertThatThrownBy(() -> client.generate(PARAMS)).isInstanceOf(InvalidRequestException.class);
    server.failNext(Status.Code.INTERNAL, 1);
    assertThatThrownBy(() -> client.stream(PARAMS).hasNext()).isInstanceOf(KvantRpcException.class);
    assertThat(server.requests()).hasSize(2);
  }

  @Test
  void retriesStopAtTheDeadline() {
    FakeKvantServer server = fake();
    server.failNext(Status.Code.UNAVAILABLE, 1000);
    // Waits capped at 100 ms, with a 400 ms deadline: a few attempts at most, never 1000.
    KvantClient client =
        KvantClient.builder()
            .targets(server.target())
            .defaultDeadline(Duration.ofMillis(400))
            .retryPolicy(
                RetryPolicy.builder()
                    .maxAttempts(1000)
                    .initialBackoff(Duration.ofMillis(100))
                    .maxBackoff(Duration.ofMillis(100))
                    .build())
            .build();
    toClose.add(client);
    long start = System.nanoTime();
    assertThatThrownBy(() -> client.generate(PARAMS))
        .isInstanceOfAny(UnavailableException.class, DeadlineExceededException.class);
    assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(2));
    assertThat(server.requests().size()).isBetween(1, 50);
  }

  @Test
  void closingTheClientEndsACallWaitingToRetry() throws Exception {
    FakeKvantServer server = fake();
    server.failNext(Status.Code.UNAVAILABLE, 1000);
    // Every retry waits a long time (full jitter of a 30 s cap: almost surely > 1 s).
    KvantClient client =
        client(
            server.target(),
            RetryPolicy.builder()
                .maxAttempts(10)
                .initialBackoff(Duration.ofSeconds(30))
                .maxBackoff(Duration.ofSeconds(30))
                .build());
    var future = client.generateAsync(PARAMS);
    assertThat(TestServers.await(() -> server.requests().size() == 1, Duration.ofSeconds(5)))
        .isTrue();
    client.close();
    assertThatThrownBy(() -> future.get(5, TimeUnit.SECONDS))
        .hasCauseInstanceOf(UnavailableException.class);
  }
}
