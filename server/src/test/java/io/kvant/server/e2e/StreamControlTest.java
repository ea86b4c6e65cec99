package io.kvant.server.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.Context;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.kvant.api.v1.GenerateChunk;
import io.kvant.api.v1.GenerateRequest;
import io.kvant.api.v1.GenerationGrpc;
import io.kvant.api.v1.GetModelStatusRequest;
import io.kvant.api.v1.ModelStatus;
import java.util.Iterator;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Flow control and cancellation over real sockets: a stalled client does not hold up others, and
 * cancelling or missing a deadline frees the request's KV blocks (seen through the admin status
 * API).
 */
class StreamControlTest {
  static TestServer server;

  @BeforeAll
  static void start() throws Exception {
    server = TestServer.builder().start();
  }

  @AfterAll
  static void stop() throws Exception {
    server.close();
  }

  static GenerateRequest longRequest() {
    // Near the context window of stories260K (2048): long enough to outlive every check below.
    return GenerateRequest.newBuilder()
        .setText("Once upon a time")
        .setMaxTokens(2000)
        .setReturnTokenIds(true)
        .build();
  }

  ModelStatus status() {
    return server
        .admin(TestServer.ADMIN_TOKEN)
        .getModelStatus(GetModelStatusRequest.getDefaultInstance());
  }

  void awaitIdle() throws InterruptedException {
    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (System.nanoTime() < until) {
      ModelStatus s = status();
      if (s.getRunningRequests() == 0
          && s.getQueuedRequests() == 0
          && s.getKvCache().getFreeBlocks() == s.getKvCache().getTotalBlocks()
          && s.getVersions(0).getPinnedRequests() == 0) {
        return;
      }
      Thread.sleep(20);
    }
    throw new AssertionError("server did not go idle: " + status());
  }

  @Test
  void stalledClientDoesNotDelayAFastOneAndCancellingItFreesItsBlocks() throws Exception {
    // A raw call that asks for no messages at all: the server can only queue (and merge) chunks.
    ClientCall<GenerateRequest, GenerateChunk> stalled =
        server.channel.newCall(GenerationGrpc.getGenerateStreamMethod(), CallOptions.DEFAULT);
    CompletableFuture<Status> stalledClosed = new CompletableFuture<>();
    AtomicInteger stalledMessages = new AtomicInteger();
    stalled.start(
        new ClientCall.Listener<>() {
          @Override
          public void onMessage(GenerateChunk message) {
            stalledMessages.incrementAndGet();
          }

          @Override
          public void onClose(Status status, Metadata trailers) {
            stalledClosed.complete(status);
          }
        },
        new Metadata());
    stalled.sendMessage(longRequest());
    stalled.halfClose();
    // Wait until the stalled request is really running.
    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (status().getRunningRequests() == 0 && System.nanoTime() < until) {
      Thread.sleep(5);
    }
    assertThat(status().getRunningRequests()).isEqualTo(1);

    GenerateRequest fast =
        GenerateRequest.newBuilder()
            .setText("The cat")
            .setMaxTokens(32)
            .setReturnTokenIds(true)
            .build();
    int tokens = 0;
    for (Iterator<GenerateChunk> it = server.blocking().generateStream(fast); it.hasNext(); ) {
      tokens += it.next().getTokenIdsCount();
    }
    assertThat(tokens).isEqualTo(32);
    // The fast request finished while the stalled one is still in flight and has read nothing.
    assertThat(stalledClosed).isNotDone();
    assertThat(stalledMessages.get()).isZero();

    stalled.cancel("client gives up", null);
    assertThat(stalledClosed.get(10, TimeUnit.SECONDS).getCode()).isEqualTo(Status.Code.CANCELLED);
    awaitIdle();
    server.server.engineLoop().checkInvariants();
  }

  @Test
  void cancellingMidStreamFreesTheBlocks() throws Exception {
    Context.CancellableContext ctx = Context.current().withCancellation();
    int[] read = new int[1];
    ctx.run(
        () -> {
          Iterator<GenerateChunk> it = server.blocking().generateStream(longRequest());
          for (int i = 0; i < 3 && it.hasNext(); i++) {
            read[0] += it.next().getTokenIdsCount();
          }
        });
    assertThat(read[0]).isPositive();
    assertThat(status().getKvCache().getFreeBlocks())
        .isLessThan(status().getKvCache().getTotalBlocks());
    ctx.cancel(null);
    awaitIdle();
  }

  @Test
  void deadlineExpiryEndsTheRequestAndFreesTheBlocks() throws Exception {
    StatusRuntimeException e =
        catchThrowableOfType(
            StatusRuntimeException.class,
            () -> {
              Iterator<GenerateChunk> it =
                  server
                      .blocking()
                      .withDeadlineAfter(150, TimeUnit.MILLISECONDS)
                      .generateStream(longRequest());
              while (it.hasNext()) {
                it.next();
              }
            });
    assertThat(e).isNotNull();
    assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.DEADLINE_EXCEEDED);
    awaitIdle();
  }
}
