package io.kvant.server;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.ManagedChannel;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.NettyChannelBuilder;
import io.kvant.server.config.ServerConfig;
import io.kvant.server.config.ServerConfig.ModelSettings;
import io.kvant.server.config.ServerConfig.SchedulerSettings;
import io.kvant.server.config.ServerConfig.SecuritySettings;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Health is NOT_SERVING while the transport is up but the model is not yet warm, then SERVING. */
class StartupHealthTest {
  static ServingStatus check(ManagedChannel ch, String service) {
    return HealthGrpc.newBlockingStub(ch)
        .check(HealthCheckRequest.newBuilder().setService(service).build())
        .getStatus();
  }

  @Test
  void healthIsNotServingUntilTheWarmUpRequestHasRun() throws Exception {
    ServerConfig config =
        new ServerConfig(
            "127.0.0.1",
            0,
            new ModelSettings(
                Path.of("../models/kvant-kjv-7m.gguf"), "kjv", "none", "f32", Optional.empty(), 16),
            new SchedulerSettings(16, 256, 8, 8L << 20, 16, 4096),
            new SecuritySettings(
                Optional.empty(),
                Optional.empty(),
                Optional.empty(),
                Optional.empty(),
                Optional.empty()),
            0,
            Optional.empty(),
            Duration.ofSeconds(5),
            1,
            Optional.empty());
    List<ServingStatus> beforeWarmUp = new ArrayList<>();
    KvantServer server =
        KvantServer.start(
            config,
            Clock.systemUTC(),
            Optional.empty(),
            s -> {
              ManagedChannel ch =
                  NettyChannelBuilder.forAddress("127.0.0.1", s.port()).usePlaintext().build();
              try {
                beforeWarmUp.add(check(ch, ""));
                beforeWarmUp.add(check(ch, "kjv"));
              } finally {
                ch.shutdownNow();
              }
            });
    ManagedChannel ch =
        NettyChannelBuilder.forAddress("127.0.0.1", server.port()).usePlaintext().build();
    try {
      assertThat(beforeWarmUp)
          .containsExactly(ServingStatus.NOT_SERVING, ServingStatus.NOT_SERVING);
      assertThat(check(ch, "")).isEqualTo(ServingStatus.SERVING);
      assertThat(check(ch, "kjv")).isEqualTo(ServingStatus.SERVING);
    } finally {
      ch.shutdownNow();
      ch.awaitTermination(5, TimeUnit.SECONDS);
      server.shutdownGracefully();
    }
  }
}
