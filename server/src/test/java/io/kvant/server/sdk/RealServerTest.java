package io.kvant.server.sdk;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.kvant.api.v1.ModelStatus;
import io.kvant.client.Chunk;
import io.kvant.client.Completion;
import io.kvant.client.DeadlineExceededException;
import io.kvant.client.GenerateParams;
import io.kvant.client.KvantAdmin;
import io.kvant.client.KvantClient;
import io.kvant.client.KvantException;
import io.kvant.client.RetryPolicy;
import io.kvant.client.TestCertificates;
import io.kvant.client.TokenStream;
import io.kvant.client.UnauthenticatedException;
import io.kvant.server.KvantServer;
import io.kvant.server.config.ServerConfig;
import io.kvant.server.config.ServerConfig.ModelSettings;
import io.kvant.server.config.ServerConfig.SchedulerSettings;
import io.kvant.server.config.ServerConfig.SecuritySettings;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Flow;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The SDK against real kvant servers (stories260K) on 127.0.0.1. */
class RealServerTest {
  static final String TOKEN = "sdk-test-token";

  static Path model() {
    for (Path d = Path.of("").toAbsolutePath(); d != null; d = d.getParent()) {
      for (Path c : new Path[] {d.resolve("shared/models"), d.resolve("../shared/models")}) {
        if (Files.isDirectory(c)) {
          return c.resolve("stories260K/stories260K.gguf").normalize();
        }
      }
    }
    throw new IllegalStateException("shared/models not found");
  }

  static KvantServer start() throws Exception {
    return start(
        new SecuritySettings(
            Optional.of(TOKEN),
            Optional.empty(),
            Optional.empty(),
            Optional.empty(),
            Optional.empty()));
  }

  static KvantServer start(SecuritySettings security) throws Exception {
    return KvantServer.start(
        new ServerConfig(
            "127.0.0.1",
            0,
            new ModelSettings(model(), "stories", "none", "f32", Optional.empty(), 64),
            new SchedulerSettings(64, 256, 32, 16L << 20, 16, 4096),
            security,
            0,
            Optional.empty(),
            Duration.ofSeconds(5),
            2,
            Optional.empty()),
        Clock.systemUTC(),
        Optional.empty());
  }

  static String target(KvantServer s) {
    return "127.0.0.1:" + s.port();
  }

  static GenerateParams greedy(String prompt, int maxTokens) {
    return GenerateParams.builder()
        .prompt(prompt)
        .maxTokens(maxTokens)
        .returnTokenIds(true)
        .build();
  }

  static List<Integer> ids(List<Chunk> chunks) {
    List<Integer> out = new ArrayList<>();
    chunks.forEach(c -> out.addAll(c.tokenIds()));
    return out;
  }

  @Test
  void everyCallStyleGivesTheSameGreedyOutput() throws Exception {
    KvantServer server = start();
    try (KvantClient client = KvantClient.builder().targets(target(server)).build()) {
      GenerateParams p = greedy("Once upon a time, Lily", 40);
      Completion blocking = client.generate(p);
      Completion async = client.generateAsync(p).get(30, TimeUnit.SECONDS);
      List<Chunk> iterated = new ArrayList<>();
      try (TokenStream s = client.stream(p)) {
        s.forEachRemaining(iterated::add);
      }
      List<Chunk> published = new ArrayList<>();
      CompletableFuture<Void> done = new CompletableFuture<>();
      client
          .publisher(p)
          .subscribe(
              new Flow.Subscriber<>() {
                @Override
                public void onSubscribe(Flow.Subscription s) {
                  s.request(Long.MAX_VALUE);
                }

                @Override
                public void onNext(Chunk c) {
                  published.add(c);
                }

                @Override
                public void onError(Throwable t) {
                  done.completeExceptionally(t);
                }

                @Override
                public void onComplete() {
                  done.complete(null);
                }
              });
      done.get(30, TimeUnit.SECONDS);
      assertThat(blocking.tokenIds()).hasSize(40);
      assertThat(async.tokenIds()).isEqualTo(blocking.tokenIds());
      assertThat(async.text()).isEqualTo(blocking.text());
      assertThat(ids(iterated)).isEqualTo(blocking.tokenIds());
      assertThat(ids(published)).isEqualTo(blocking.tokenIds());
      assertThat(String.join("", iterated.stream().map(Chunk::text).toList()))
          .isEqualTo(blocking.text());
      assertThat(iterated.getLast().isLast()).isTrue();
      assertThat(iterated.getLast().modelVersion()).isEqualTo(blocking.modelVersion());
    } finally {
      server.shutdownGracefully();
    }
  }

  @Test
  void withOneOfTwoServersStoppedRequestsSucceedThroughTheOther() throws Exception {
    KvantServer a = start();
    KvantServer b = start();
    try (KvantClient client =
        KvantClient.builder()
            .targets(target(a), target(b))
            .defaultDeadline(Duration.ofSeconds(20))
            .build()) {
      Completion before = client.generate(greedy("The dog", 8));
      a.shutdownGracefully();
      for (int i = 0; i < 6; i++) {
        assertThat(client.generate(greedy("The dog", 8)).tokenIds()).isEqualTo(before.tokenIds());
        try (TokenStream s = client.stream(greedy("The dog", 8))) {
          List<Chunk> chunks = new ArrayList<>();
          s.forEachRemaining(chunks::add);
          assertThat(ids(chunks)).isEqualTo(before.tokenIds());
        }
      }
    } finally {
      b.shutdownGracefully();
    }
  }

  @Test
  void aServerKilledMidStreamGivesAnErrorNotADuplicatedPrefix() throws Exception {
    KvantServer server = start();
    try (KvantClient client =
        KvantClient.builder().targets(target(server)).retryPolicy(RetryPolicy.defaults()).build()) {
      List<Chunk> seen = new ArrayList<>();
      Throwable error;
      try (TokenStream s = client.stream(greedy("Once upon a time", 1900))) {
        seen.add(s.next());
        seen.add(s.next());
        server.kill();
        error = catchThrowable(() -> s.forEachRemaining(seen::add));
      }
      assertThat(error).isInstanceOf(KvantException.class);
      // What arrived is a prefix of one completion: positions never repeat.
      List<Integer> ids = ids(seen);
      Completion reference;
      KvantServer fresh = start();
      try (KvantClient c2 = KvantClient.builder().targets(target(fresh)).build()) {
        reference = c2.generate(greedy("Once upon a time", ids.size()));
      } finally {
        fresh.shutdownGracefully();
      }
      assertThat(ids).isEqualTo(reference.tokenIds());
    } finally {
      server.shutdownGracefully();
    }
  }

  @Test
  void closingATokenStreamEarlyCancelsTheCallAndFreesItsBlocks() throws Exception {
    KvantServer server = start();
    try (KvantClient client = KvantClient.builder().targets(target(server)).build();
        KvantAdmin admin =
            KvantAdmin.builder().targets(target(server)).bearerToken(TOKEN).build()) {
      try (TokenStream s = client.stream(greedy("Once upon a time", 1900))) {
        s.next();
        s.next();
        ModelStatus during = admin.status("");
        assertThat(during.getRunningRequests() + during.getQueuedRequests()).isEqualTo(1);
      }
      long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      ModelStatus after = admin.status("");
      while (System.nanoTime() < until
          && (after.getRunningRequests() > 0
              || after.getKvCache().getFreeBlocks() < after.getKvCache().getTotalBlocks())) {
        Thread.sleep(20);
        after = admin.status("");
      }
      assertThat(after.getRunningRequests()).isZero();
      assertThat(after.getKvCache().getFreeBlocks()).isEqualTo(after.getKvCache().getTotalBlocks());
    } finally {
      server.shutdownGracefully();
    }
  }

  @Test
  void aSlowSubscriberNeverReceivesMoreThanItRequested() throws Exception {
    KvantServer server = start();
    try (KvantClient client = KvantClient.builder().targets(target(server)).build()) {
      GenerateParams p = greedy("The little bird", 200);
      Completion expected = client.generate(p);
      AtomicLong requested = new AtomicLong();
      AtomicLong received = new AtomicLong();
      List<Chunk> chunks = new ArrayList<>();
      CompletableFuture<Void> done = new CompletableFuture<>();
      client
          .publisher(p)
          .subscribe(
              new Flow.Subscriber<>() {
                Flow.Subscription sub;

                @Override
                public void onSubscribe(Flow.Subscription s) {
                  sub = s;
                  requested.incrementAndGet();
                  s.request(1);
                }

                @Override
                public void onNext(Chunk c) {
                  if (received.incrementAndGet() > requested.get()) {
                    done.completeExceptionally(new AssertionError("got more than requested"));
                  }
                  chunks.add(c);
                  try {
                    Thread.sleep(2); // a slow consumer
                  } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                  }
                  requested.incrementAndGet();
                  sub.request(1);
                }

                @Override
                public void onError(Throwable t) {
                  done.completeExceptionally(t);
                }

                @Override
                public void onComplete() {
                  done.complete(null);
                }
              });
      done.get(60, TimeUnit.SECONDS);
      // The server merged deltas while the subscriber lagged, so it may get fewer, larger chunks,
      // but every token, in order.
      assertThat(ids(chunks)).isEqualTo(expected.tokenIds());
      assertThat(received.get()).isLessThanOrEqualTo(requested.get());
    } finally {
      server.shutdownGracefully();
    }
  }

  @Test
  void mutualTlsFromPemFiles(@TempDir Path dir) throws Exception {
    assumeTrue(TestCertificates.opensslAvailable(), "openssl is not installed");
    TestCertificates.create(dir);
    KvantServer server =
        start(
            new SecuritySettings(
                Optional.of(TOKEN),
                Optional.empty(),
                Optional.of(dir.resolve("server.pem")),
                Optional.of(dir.resolve("server.key")),
                Optional.of(dir.resolve("ca.pem"))));
    try (KvantClient withCert =
            KvantClient.builder()
                .targets(target(server))
                .trustCertificate(dir.resolve("ca.pem"))
                .clientCertificate(dir.resolve("client.pem"), dir.resolve("client.key"))
                .build();
        KvantClient withoutCert =
            KvantClient.builder()
                .targets(target(server))
                .trustCertificate(dir.resolve("ca.pem"))
                .retryPolicy(RetryPolicy.none())
                .build();
        KvantClient plaintext =
            KvantClient.builder().targets(target(server)).retryPolicy(RetryPolicy.none()).build()) {
      assertThat(withCert.generate(greedy("The cat", 5)).tokenIds()).hasSize(5);
      assertThatThrownBy(() -> withoutCert.generate(greedy("The cat", 5)))
          .isInstanceOf(KvantException.class);
      assertThatThrownBy(() -> plaintext.generate(greedy("The cat", 5)))
          .isInstanceOf(KvantException.class);
    } finally {
      server.shutdownGracefully();
    }
  }

  @Test
  void deadlinesMapToDeadlineExceededAndAdminCallsUseTheToken() throws Exception {
    KvantServer server = start();
    try (KvantClient client =
            KvantClient.builder()
                .targets(target(server))
                .defaultDeadline(Duration.ofMillis(100))
                .build();
        KvantAdmin admin = KvantAdmin.builder().targets(target(server)).bearerToken(TOKEN).build();
        KvantAdmin wrong =
            KvantAdmin.builder().targets(target(server)).bearerToken("nope").build()) {
      assertThatThrownBy(() -> client.generate(greedy("Once upon a time", 1900)))
          .isInstanceOf(DeadlineExceededException.class);
      assertThat(admin.status("").getServingVersion()).startsWith("stories260K@");
      assertThatThrownBy(() -> wrong.status("")).isInstanceOf(UnauthenticatedException.class);
    } finally {
      server.shutdownGracefully();
    }
  }
}
