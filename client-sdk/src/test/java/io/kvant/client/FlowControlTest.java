package io.kvant.client;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.grpc.Server;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.kvant.api.v1.GenerateChunk;
import io.kvant.api.v1.GenerateRequest;
import io.kvant.api.v1.GenerationGrpc;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Backpressure and cancellation of streams, seen from the server. */
@Timeout(30)
class FlowControlTest {
  /** 256 KiB per chunk, 200 chunks: 50 MiB, far more than any HTTP/2 window lets through. */
  static final int CHUNK_BYTES = 256 * 1024;

  static final int TOTAL = 200;

  /**
   * What the server can send ahead of a reader that stopped asking: the client's HTTP/2 stream
   * window (1 MiB, at most 8 MiB once gRPC's BDP tuning grows it) plus the ~32 KiB gRPC lets a
   * server queue before isReady() turns false. 8 MiB / 256 KiB = 32 chunks, so 40 is a bound with
   * margin that is still 5 times below TOTAL.
   */
  static final int MAX_AHEAD = 40;

  static final GenerateParams PARAMS = GenerateParams.builder().prompt("go").build();

  /**
   * Sends as fast as flow control allows (from the onReady handler), or one chunk and then nothing;
   * records how many it sent and whether it saw the client cancel.
   */
  static final class Service extends GenerationGrpc.GenerationImplBase {
    final AtomicInteger sent = new AtomicInteger();
    final CountDownLatch cancelled = new CountDownLatch(1);
    final CountDownLatch started = new CountDownLatch(1);
    volatile boolean firehose = true;

    @Override
    public void generateStream(GenerateRequest request, StreamObserver<GenerateChunk> out) {
      ServerCallStreamObserver<GenerateChunk> call = (ServerCallStreamObserver<GenerateChunk>) out;
      call.setOnCancelHandler(cancelled::countDown);
      started.countDown();
      if (!firehose) {
        call.onNext(GenerateChunk.newBuilder().setText("first").build());
        return; // and never complete
      }
      GenerateChunk chunk = GenerateChunk.newBuilder().setText("x".repeat(CHUNK_BYTES)).build();
      GenerateChunk last =
          chunk.toBuilder()
              .setFinishReason(io.kvant.api.v1.FinishReason.FINISH_REASON_STOP)
              .build();
      call.setOnReadyHandler(
          () -> {
            while (call.isReady() && !call.isCancelled() && sent.get() < TOTAL) {
              call.onNext(sent.incrementAndGet() == TOTAL ? last : chunk);
              if (sent.get() == TOTAL) {
                call.onCompleted();
              }
            }
          });
    }
  }

  private Service service;
  private Server server;
  private KvantClient client;

  @BeforeEach
  void start() {
    service = new Service();
    server = TestServers.start(service);
    client = TestServers.client(server).streamBufferSize(2).build();
  }

  @AfterEach
  void stop() throws InterruptedException {
    client.close();
    TestServers.stop(server);
  }

  /** Waits until the server's sent count has not moved for 300 ms; returns it. */
  private int settledSentCount() throws InterruptedException {
    int last = -1;
    long end = System.nanoTime() + Duration.ofSeconds(5).toNanos();
    while (System.nanoTime() < end) {
      int now = service.sent.get();
      if (now == last) {
        return now;
      }
      last = now;
      Thread.sleep(300);
    }
    return service.sent.get();
  }

  @Test
  void aSlowSubscriberHoldsTheServerBack() throws Exception {
    CollectingSubscriber<Chunk> subscriber = new CollectingSubscriber<>(2, false);
    client.publisher(PARAMS).subscribe(subscriber);

    assertThat(TestServers.await(() -> subscriber.items.size() == 2, Duration.ofSeconds(5)))
        .isTrue();
    int ahead = settledSentCount();
    System.out.println("publisher: server sent " + ahead + " chunks for 2 requested");
    assertThat(subscriber.items).hasSize(2); // nothing beyond what was requested
    assertThat(ahead).isBetween(2, MAX_AHEAD);

    subscriber.request(Long.MAX_VALUE); // now read everything
    assertThat(subscriber.done.get(20, TimeUnit.SECONDS)).hasSize(TOTAL);
    assertThat(subscriber.items.get(subscriber.items.size() - 1).isLast()).isTrue();
    assertThat(service.sent).hasValue(TOTAL);
    assertThat(subscriber.protocolViolation).isFalse();
  }

  @Test
  void aSlowIteratorHoldsTheServerBack() throws Exception {
    try (TokenStream stream = client.stream(PARAMS)) {
      assertThat(stream.next().text()).hasSize(CHUNK_BYTES);
      int ahead = settledSentCount();
      System.out.println("iterator: server sent " + ahead + " chunks for 1 read");
      assertThat(ahead).isBetween(2, MAX_AHEAD);

      int read = 1;
      while (stream.hasNext()) {
        stream.next();
        read++;
      }
      assertThat(read).isEqualTo(TOTAL);
    }
  }

  @Test
  void closingATokenStreamEarlyCancelsTheServerCall() throws Exception {
    service.firehose = false;
    TokenStream stream = client.stream(PARAMS);
    assertThat(stream.next().text()).isEqualTo("first");
    stream.close();
    assertThat(service.cancelled.await(5, TimeUnit.SECONDS)).isTrue();
    assertThat(stream.hasNext()).isFalse();
  }

  @Test
  void closingFromAnotherThreadWakesABlockedReader() throws Exception {
    service.firehose = false;
    TokenStream stream = client.stream(PARAMS);
    stream.next();
    Thread closer =
        TestServers.startThread(
            () -> {
              try {
                Thread.sleep(100);
              } catch (InterruptedException e) {
                return;
              }
              stream.close();
            });
    assertThat(stream.hasNext()).isFalse(); // blocked until the close
    closer.join(5000);
    assertThat(service.cancelled.await(5, TimeUnit.SECONDS)).isTrue();
  }

  @Test
  void cancellingASubscriptionCancelsTheServerCall() throws Exception {
    service.firehose = false;
    CollectingSubscriber<Chunk> subscriber = new CollectingSubscriber<>(1, false);
    client.publisher(PARAMS).subscribe(subscriber);
    assertThat(TestServers.await(() -> subscriber.items.size() == 1, Duration.ofSeconds(5)))
        .isTrue();
    subscriber.subscription.cancel();
    assertThat(service.cancelled.await(5, TimeUnit.SECONDS)).isTrue();
    assertThat(subscriber.done).isNotDone();
  }

  @Test
  void requestingZeroSignalsIllegalArgumentAndCancels() throws Exception {
    service.firehose = false;
    CollectingSubscriber<Chunk> subscriber = new CollectingSubscriber<>(0, false);
    client.publisher(PARAMS).subscribe(subscriber);
    assertThat(service.started.await(5, TimeUnit.SECONDS)).isTrue();
    subscriber.subscription.request(0);
    assertThatThrownBy(() -> subscriber.done.get(5, TimeUnit.SECONDS))
        .isInstanceOf(ExecutionException.class)
        .cause()
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("3.9");
    assertThat(service.cancelled.await(5, TimeUnit.SECONDS)).isTrue();
    assertThat(subscriber.items).isEmpty(); // nothing was requested, nothing delivered
  }
}
