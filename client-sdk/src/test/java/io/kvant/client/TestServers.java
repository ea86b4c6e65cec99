package io.kvant.client;

import io.grpc.BindableService;
import io.grpc.InsecureServerCredentials;
import io.grpc.Server;
import io.grpc.ServerCredentials;
import io.grpc.ServerServiceDefinition;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/** Real gRPC servers on 127.0.0.1 for the tests, and bounded waiting. */
final class TestServers {
  private TestServers() {}

  static Server start(BindableService... services) {
    return start(InsecureServerCredentials.create(), services);
  }

  static Server start(ServerCredentials credentials, BindableService... services) {
    ServerServiceDefinition[] defs = new ServerServiceDefinition[services.length];
    for (int i = 0; i < services.length; i++) {
      defs[i] = services[i].bindService();
    }
    return start(credentials, defs);
  }

  static Server start(ServerCredentials credentials, ServerServiceDefinition... services) {
    NettyServerBuilder b =
        NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0), credentials);
    for (ServerServiceDefinition s : services) {
      b.addService(s);
    }
    try {
      return b.build().start();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static String target(Server server) {
    return "127.0.0.1:" + server.getPort();
  }

  static void stop(Server server) throws InterruptedException {
    server.shutdownNow();
    server.awaitTermination(5, TimeUnit.SECONDS);
  }

  /** Retries that wait at most a few milliseconds, so retry tests stay fast. */
  static RetryPolicy fastRetries(int maxAttempts) {
    return RetryPolicy.builder()
        .maxAttempts(maxAttempts)
        .initialBackoff(Duration.ofMillis(5))
        .maxBackoff(Duration.ofMillis(20))
        .build();
  }

  static KvantClient.Builder client(Server... servers) {
    String[] targets = new String[servers.length];
    for (int i = 0; i < servers.length; i++) {
      targets[i] = target(servers[i]);
    }
    return KvantClient.builder()
        .targets(targets)
        .defaultDeadline(Duration.ofSeconds(10))
        .retryPolicy(fastRetries(4));
  }

  /** Waits until the condition holds, at most {@code timeout}; returns whether it held. */
  static boolean await(BooleanSupplier condition, Duration timeout) throws InterruptedException {
    long end = System.nanoTime() + timeout.toNanos();
    while (System.nanoTime() < end) {
      if (condition.getAsBoolean()) {
        return true;
      }
      Thread.sleep(5);
    }
    return condition.getAsBoolean();
  }

  /**
   * Starts {@code task} on a new daemon thread (the SDK's tests run on Java 17: no virtual ones).
   */
  static Thread startThread(Runnable task) {
    Thread t = new Thread(task, "test-helper");
    t.setDaemon(true);
    t.start();
    return t;
  }
}
