package io.kvant.server.e2e;

import io.grpc.CallCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.netty.NettyChannelBuilder;
import io.kvant.api.v1.GenerationGrpc;
import io.kvant.api.v1.ModelAdminGrpc;
import io.kvant.server.KvantServer;
import io.kvant.server.config.ServerConfig;
import io.kvant.server.config.ServerConfig.ModelSettings;
import io.kvant.server.config.ServerConfig.SchedulerSettings;
import io.kvant.server.config.ServerConfig.SecuritySettings;
import io.opentelemetry.sdk.testing.exporter.InMemorySpanExporter;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;

/** A real kvant server on 127.0.0.1 with a channel to it, for end-to-end tests. */
final class TestServer implements AutoCloseable {
  static final String ADMIN_TOKEN = "test-admin-token";

  final KvantServer server;
  final ManagedChannel channel;
  final InMemorySpanExporter spans = InMemorySpanExporter.create();

  private TestServer(ServerConfig config) throws IOException {
    this.server = KvantServer.start(config, Clock.systemUTC(), Optional.of(spans));
    this.channel =
        NettyChannelBuilder.forAddress("127.0.0.1", server.port()).usePlaintext().build();
  }

  static Path stories() {
    for (Path d = Path.of("").toAbsolutePath(); d != null; d = d.getParent()) {
      for (Path c : new Path[] {d.resolve("shared/models"), d.resolve("../shared/models")}) {
        if (Files.isDirectory(c)) {
          return c.resolve("stories260K/stories260K.gguf").normalize();
        }
      }
    }
    throw new IllegalStateException("shared/models not found");
  }

  static Builder builder() {
    return new Builder();
  }

  static final class Builder {
    Path model = stories();
    int maxQueue = 256;
    int maxSeqs = 64;
    long kvBytes = 16L << 20;
    String kv = "f32";
    String kvEncoding = "";
    String weights = "none";
    String device = "cpu";
    Duration drain = Duration.ofSeconds(10);
    Optional<String> generationToken = Optional.empty();
    Optional<String> bucket = Optional.empty();
    io.kvant.server.config.AgentConfig agent = io.kvant.server.config.AgentConfig.defaults();
    String name = "stories";
    Optional<Integer> httpPort = Optional.empty();
    Optional<Path> chatTemplate = Optional.empty();
    java.util.Map<String, String> otelEnv = java.util.Map.of();

    /** Serves {@code path} (a model file or a {@code kvant quantize} folder). */
    Builder model(Path path) {
      model = path;
      return this;
    }

    /** Serves the bundled model (models/kvant-kjv-7m.gguf) as "kjv". */
    Builder bundledModel() {
      model = Path.of("../models/kvant-kjv-7m.gguf");
      name = "kjv";
      return this;
    }

    /** Turns the OpenAI-compatible HTTP API on, on a free port. */
    Builder http() {
      httpPort = Optional.of(0);
      return this;
    }

    Builder chatTemplate(Path file) {
      chatTemplate = Optional.of(file);
      return this;
    }

    Builder otelEnv(java.util.Map<String, String> env) {
      otelEnv = env;
      return this;
    }

    Builder bucket(String uri, io.kvant.server.config.AgentConfig agentConfig) {
      bucket = Optional.of(uri);
      agent = agentConfig;
      return this;
    }

    Builder maxQueue(int n) {
      maxQueue = n;
      return this;
    }

    Builder maxSeqs(int n) {
      maxSeqs = n;
      return this;
    }

    Builder kvBytes(long n) {
      kvBytes = n;
      return this;
    }

    Builder weights(String recipe) {
      weights = recipe;
      return this;
    }

    Builder device(String d) {
      device = d;
      return this;
    }

    /** The KV encoding's option name ({@code --kv-encoding}); empty: the device's default. */
    Builder kvEncoding(String name) {
      kvEncoding = name;
      return this;
    }

    Builder kv(String type) {
      kv = type;
      return this;
    }

    Builder drain(Duration d) {
      drain = d;
      return this;
    }

    Builder generationToken(String t) {
      generationToken = Optional.of(t);
      return this;
    }

    TestServer start() throws IOException {
      ServerConfig c =
          new ServerConfig(
              "127.0.0.1",
              0,
              new ModelSettings(model, name, weights, kv, Optional.empty(), 64, device, kvEncoding),
              new SchedulerSettings(maxQueue, 256, maxSeqs, kvBytes, 16, 4096),
              new SecuritySettings(
                  Optional.of(ADMIN_TOKEN),
                  generationToken,
                  Optional.empty(),
                  Optional.empty(),
                  Optional.empty()),
              freePort(),
              Optional.empty(),
              drain,
              2,
              bucket,
              agent,
              new ServerConfig.InteropSettings(httpPort, chatTemplate, otelEnv, "text"));
      return new TestServer(c);
    }
  }

  static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  /** The base URL of the OpenAI-compatible API, e.g. {@code http://127.0.0.1:1234}. */
  String httpBase() {
    return "http://127.0.0.1:" + server.httpPort();
  }

  GenerationGrpc.GenerationBlockingStub blocking() {
    return GenerationGrpc.newBlockingStub(channel);
  }

  GenerationGrpc.GenerationStub async() {
    return GenerationGrpc.newStub(channel);
  }

  ModelAdminGrpc.ModelAdminBlockingStub admin(String token) {
    return ModelAdminGrpc.newBlockingStub(channel).withCallCredentials(bearer(token));
  }

  static CallCredentials bearer(String token) {
    return new CallCredentials() {
      @Override
      public void applyRequestMetadata(
          RequestInfo info, Executor executor, MetadataApplier applier) {
        Metadata m = new Metadata();
        m.put(
            Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), "Bearer " + token);
        applier.apply(m);
      }
    };
  }

  @Override
  public void close() throws InterruptedException {
    channel.shutdownNow();
    channel.awaitTermination(5, TimeUnit.SECONDS);
    server.shutdownGracefully();
  }
}
