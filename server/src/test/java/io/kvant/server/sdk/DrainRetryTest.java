package io.kvant.server.sdk;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.kvant.api.v1.GenerateChunk;
import io.kvant.api.v1.GenerateRequest;
import io.kvant.api.v1.GenerationGrpc;
import io.kvant.client.Completion;
import io.kvant.client.GenerateParams;
import io.kvant.client.KvantClient;
import io.kvant.client.RetryPolicy;
import io.kvant.server.KvantServer;
import io.kvant.server.config.ServerConfig;
import io.kvant.server.config.ServerConfig.ModelSettings;
import io.kvant.server.config.ServerConfig.SchedulerSettings;
import io.kvant.server.config.ServerConfig.SecuritySettings;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Issue 17, item 8: requests still running when the drain timeout passes end with UNAVAILABLE, and
 * the SDK retries those that delivered no output on another sidecar.
 */
class DrainRetryTest {
  static KvantServer start(Duration drain) throws Exception {
    return KvantServer.start(
        new ServerConfig(
            "127.0.0.1",
            0,
            new ModelSettings(
                RealServerTest.model(), "stories", "none", "f32", Optional.empty(), 64),
            new SchedulerSettings(64, 256, 32, 16L << 20, 16, 4096),
            new SecuritySettings(
                Optional.empty(),
                Optional.empty(),
                Optional.empty(),
                Optional.empty(),
                Optional.empty()),
            0,
            Optional.empty(),
            drain,
            2,
            Optional.empty()),
        Clock.systemUTC(),
        Optional.empty());
  }

  static void awaitRunning(KvantServer s, int n) throws InterruptedException {
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (s.engineLoop().stats().running() < n && System.nanoTime() < end) {
      Thread.sleep(2);
    }
    assertThat(s.engineLoop().stats().running()).isGreaterThanOrEqualTo(n);
  }

  @Test
  void aStreamCutByTheDrainDeadlineEndsUnavailable() throws Exception {
    KvantServer a = start(Duration.ZERO);
    ManagedChannel ch =
        NettyChannelBuilder.forTarget(RealServerTest.target(a)).usePlaintext().build();
    try {
      Iterator<GenerateChunk> it =
          GenerationGrpc.newBlockingStub(ch)
              .withDeadlineAfter(60, TimeUnit.SECONDS)
              .generateStream(
                  GenerateRequest.newBuilder()
                      .setText("Once upon a time")
                      .setMaxTokens(480)
                      .build());
      assertThat(it.hasNext()).isTrue();
      it.next();
      a.shutdownGracefully();
      StatusRuntimeException e = null;
      try {
        it.forEachRemaining(c -> {});
      } catch (StatusRuntimeException x) {
        e = x;
      }
      assertThat(e).as("the stream must fail, not finish").isNotNull();
      assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE);
      assertThat(e.getStatus().getDescription()).contains("drain timeout", "safe to retry");
    } finally {
      ch.shutdownNow();
      a.shutdownGracefully();
    }
  }

  @Test
  void unaryCallsCutByTheDrainDeadlineAreRetriedOnAnotherSidecar() throws Exception {
    KvantServer a = start(Duration.ZERO);
    KvantServer b = start(Duration.ofSeconds(30));
    try (KvantClient client =
        KvantClient.builder()
            .targets(RealServerTest.target(a), RealServerTest.target(b))
            .defaultDeadline(Duration.ofSeconds(90))
            .retryPolicy(
                RetryPolicy.builder()
                    .maxAttempts(4)
                    .initialBackoff(Duration.ofMillis(20))
                    .maxBackoff(Duration.ofMillis(200))
                    .build())
            .build()) {
      GenerateParams p = GenerateParams.builder().prompt("Once upon a time").maxTokens(480).build();
      // Round robin: send until one call runs on `a` (bounded).
      List<CompletableFuture<Completion>> calls = new ArrayList<>();
      long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
      while (a.engineLoop().stats().running() == 0 && calls.size() < 8) {
        calls.add(client.generateAsync(p));
        long wait = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(500);
        while (a.engineLoop().stats().running() == 0 && System.nanoTime() < wait) {
          Thread.sleep(2);
        }
        assertThat(System.nanoTime()).isLessThan(end);
      }
      awaitRunning(a, 1);
      // Drain timeout zero: what runs on `a` is cut at once, before it can finish.
      a.shutdownGracefully();
      for (CompletableFuture<Completion> c : calls) {
        Completion done = c.get(90, TimeUnit.SECONDS);
        assertThat(done.usage().completionTokens()).isPositive();
      }
    } finally {
      a.shutdownGracefully();
      b.shutdownGracefully();
    }
  }
}
