package io.kvant.perf.swap;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.InsecureServerCredentials;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.Status;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import io.kvant.api.v1.ModelAdminGrpc;
import io.kvant.api.v1.SwapPolicy;
import io.kvant.api.v1.SwapRequest;
import io.kvant.api.v1.SwapResponse;
import io.kvant.client.KvantAdmin;
import io.kvant.client.testing.FakeKvantServer;
import io.kvant.perf.load.BenchResult.SwapEvent;
import io.kvant.perf.load.BenchResult.SwapPhase;
import io.kvant.perf.load.LengthDist;
import io.kvant.perf.load.LoadConfig;
import io.kvant.perf.load.LoadGenerator;
import io.kvant.perf.load.PromptSource;
import io.kvant.perf.load.RequestRecord;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class SwapBenchTest {
  private static final Metadata.Key<String> AUTH =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

  /** A tiny ModelAdmin that checks the token, records swaps and takes 40 ms per swap. */
  static final class FakeAdmin extends ModelAdminGrpc.ModelAdminImplBase {
    final List<SwapRequest> swaps = new CopyOnWriteArrayList<>();

    @Override
    public void swap(SwapRequest request, StreamObserver<SwapResponse> out) {
      swaps.add(request);
      try {
        Thread.sleep(40);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      if (request.getVersion().equals("bad")) {
        out.onError(
            Status.FAILED_PRECONDITION.withDescription("quality gate").asRuntimeException());
        return;
      }
      out.onNext(
          SwapResponse.newBuilder()
              .setServingVersion(request.getVersion())
              .setDurationMs(40)
              .build());
      out.onCompleted();
    }
  }

  private static Server startAdmin(FakeAdmin admin) throws Exception {
    ServerInterceptor auth =
        new ServerInterceptor() {
          @Override
          public <Q, R> ServerCall.Listener<Q> interceptCall(
              ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
            if (!"Bearer s3cret".equals(headers.get(AUTH))) {
              call.close(Status.UNAUTHENTICATED, new Metadata());
              return new ServerCall.Listener<>() {};
            }
            return next.startCall(call, headers);
          }
        };
    return NettyServerBuilder.forAddress(
            new InetSocketAddress("127.0.0.1", 0), InsecureServerCredentials.create())
        .addService(ServerInterceptors.intercept(admin, auth))
        .build()
        .start();
  }

  @Test
  void swapsDuringLoadAreRecordedAndRequestsGroupedAroundThem() throws Exception {
    FakeAdmin fakeAdmin = new FakeAdmin();
    Server adminServer = startAdmin(fakeAdmin);
    try (FakeKvantServer gen =
            FakeKvantServer.builder().respond("a b c d").chunkDelay(Duration.ofMillis(2)).start();
        KvantAdmin admin =
            KvantAdmin.builder()
                .targets("127.0.0.1:" + adminServer.getPort())
                .bearerToken("s3cret")
                .build()) {
      LoadConfig cfg =
          new LoadConfig(
              false,
              3,
              0,
              1,
              0,
              Optional.of(Duration.ofMillis(700)),
              0,
              "",
              0f,
              0f,
              0,
              1,
              Duration.ofSeconds(10));
      LoadGenerator load =
          new LoadGenerator(
              gen.client(),
              cfg,
              PromptSource.synthetic(new LengthDist.Fixed(3), new LengthDist.Fixed(4), 1),
              System::nanoTime);
      SwapBench bench =
          new SwapBench(
              admin,
              "",
              SwapBench.TargetKind.VERSION,
              List.of("v2", "bad"),
              SwapPolicy.SWAP_POLICY_DRAIN,
              Duration.ofMillis(200),
              2,
              System::nanoTime);
      LoadGenerator.Run run = bench.run(load, new LoadGenerator.Listener() {});

      assertThat(fakeAdmin.swaps).extracting(SwapRequest::getVersion).containsExactly("v2", "bad");
      assertThat(fakeAdmin.swaps)
          .allSatisfy(r -> assertThat(r.getPolicy()).isEqualTo(SwapPolicy.SWAP_POLICY_DRAIN));
      List<SwapEvent> events = bench.events();
      assertThat(events).hasSize(2);
      assertThat(events.get(0).ok()).isTrue();
      assertThat(events.get(0).detail()).isEqualTo("v2");
      assertThat(events.get(1).ok()).isFalse();
      assertThat(events.get(1).detail()).contains("FAILED_PRECONDITION");
      assertThat(events.get(0).startMs()).isGreaterThanOrEqualTo(199.0);
      assertThat(events.get(0).endMs() - events.get(0).startMs()).isGreaterThanOrEqualTo(35);
      assertThat(events.get(1).startMs()).isGreaterThanOrEqualTo(events.get(0).endMs());

      List<SwapPhase> phases = SwapBench.phases(run.records(), events, 50);
      assertThat(phases).hasSize(2);
      SwapPhase first = phases.getFirst();
      assertThat(first.before().requests()).isPositive();
      assertThat(first.before().failed() + first.during().failed() + first.after().failed())
          .isZero();
      assertThat(first.before().versions()).containsExactly("fake-v1");
      int grouped =
          first.before().requests()
              + first.during().requests()
              + first.after().requests()
              + phases.get(1).during().requests()
              + phases.get(1).after().requests();
      assertThat(grouped).isEqualTo(run.records().size());
    } finally {
      adminServer.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  @Test
  void phasesSplitByStartTime() {
    List<RequestRecord> records =
        List.of(
            rec(0, 10, true),
            rec(1, 99, true),
            rec(2, 100, false),
            rec(3, 160, true),
            rec(4, 170, true),
            rec(5, 400, true));
    List<SwapEvent> swaps = List.of(new SwapEvent("v2", 100, 150, true, "v2"));
    SwapPhase p = SwapBench.phases(records, swaps, 15).getFirst();
    assertThat(p.before().requests()).isEqualTo(2);
    assertThat(p.during().requests()).isEqualTo(2); // 100 and 160 (< 150 + 15)
    assertThat(p.during().failed()).isEqualTo(1);
    assertThat(p.during().ttft().count()).isEqualTo(1);
    assertThat(p.after().requests()).isEqualTo(2);
  }

  private static RequestRecord rec(int i, double start, boolean ok) {
    return new RequestRecord(
        i, start, ok, ok ? "" : "UNAVAILABLE", ok ? 5 : -1, 20, 1, 0, 3, new double[] {1, 1}, "v");
  }
}
