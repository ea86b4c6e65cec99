package io.kvant.server.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.kvant.api.v1.GenerateRequest;
import io.kvant.api.v1.GenerationGrpc;
import io.kvant.api.v1.GetModelStatusRequest;
import io.kvant.api.v1.ListModelsRequest;
import io.kvant.api.v1.ModelAdminGrpc;
import io.kvant.api.v1.RollbackRequest;
import io.kvant.api.v1.SamplingParams;
import io.kvant.api.v1.SwapRequest;
import io.kvant.api.v1.TokenIds;
import io.kvant.api.v1.TokenizeRequest;
import io.kvant.api.v1.WatchEventsRequest;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Issue 17, items 3 and 4: random and mutated requests to every gRPC method over a real socket.
 * Every answer must be OK or a status the API documents for that method (never UNKNOWN or
 * INTERNAL), and the server must still serve afterwards.
 *
 * <p>The test is written against {@link Surface}, one API surface with its documented outcomes, so
 * that the HTTP API (issue 19) can be added as a second surface next to {@link GrpcSurface}.
 * Bounded in cases ({@value #MAX_CASES}) and time ({@value #MAX_SECONDS} s); the seed is printed.
 */
class ApiFuzzTest {
  static final int MAX_CASES = 3000;
  static final int MAX_SECONDS = 25;
  static final int IN_FLIGHT = 8;

  /** What one API surface accepts and what it may answer. */
  interface Surface {
    /** Valid requests, by operation name, that mutations start from. */
    Map<String, List<byte[]>> seeds();

    /** Sends {@code body} to {@code operation}; completes with the outcome's name. */
    CompletableFuture<String> send(String operation, byte[] body);

    /** Whether {@code outcome} is documented for {@code operation}. */
    boolean documented(String operation, String outcome);
  }

  /** The gRPC API, over a plaintext channel to 127.0.0.1. */
  static final class GrpcSurface implements Surface {
    // The statuses generation.proto and admin.proto document (DEADLINE_EXCEEDED: the test's own
    // deadlines; RESOURCE_EXHAUSTED: a full queue, or a message over the size limit).
    static final Set<Status.Code> GENERATION =
        EnumSet.of(
            Status.Code.OK,
            Status.Code.INVALID_ARGUMENT,
            Status.Code.NOT_FOUND,
            Status.Code.RESOURCE_EXHAUSTED,
            Status.Code.DEADLINE_EXCEEDED);
    static final Set<Status.Code> ADMIN =
        EnumSet.of(
            Status.Code.OK,
            Status.Code.INVALID_ARGUMENT,
            Status.Code.NOT_FOUND,
            Status.Code.FAILED_PRECONDITION,
            Status.Code.DEADLINE_EXCEEDED);

    private final TestServer server;
    private final Map<String, MethodDescriptor<byte[], byte[]>> methods = new TreeMap<>();

    GrpcSurface(TestServer server) {
      this.server = server;
      add(GenerationGrpc.getGenerateMethod());
      add(GenerationGrpc.getGenerateStreamMethod());
      add(GenerationGrpc.getTokenizeMethod());
      add(GenerationGrpc.getListModelsMethod());
      add(ModelAdminGrpc.getGetModelStatusMethod());
      add(ModelAdminGrpc.getSwapMethod());
      add(ModelAdminGrpc.getRollbackMethod());
      add(ModelAdminGrpc.getWatchEventsMethod());
      add(HealthGrpc.getCheckMethod());
    }

    private void add(MethodDescriptor<?, ?> m) {
      methods.put(
          m.getFullMethodName(),
          m.toBuilder(new BadInputTest.RawMarshaller(), new BadInputTest.RawMarshaller()).build());
    }

    @Override
    public Map<String, List<byte[]>> seeds() {
      Map<String, List<byte[]>> s = new TreeMap<>();
      List<byte[]> gen = new ArrayList<>();
      gen.add(
          GenerateRequest.newBuilder()
              .setText("Once upon a time")
              .setMaxTokens(3)
              .build()
              .toByteArray());
      gen.add(
          GenerateRequest.newBuilder()
              .setTokenIds(TokenIds.newBuilder().addIds(1).addIds(400).addIds(7))
              .setMaxTokens(2)
              .setSampling(
                  SamplingParams.newBuilder().setTemperature(0.8f).setTopK(5).setTopP(0.9f))
              .addStop("\n")
              .setLogprobs(2)
              .setReturnTokenIds(true)
              .setPriority(-3)
              .setRequestId("fuzz-1")
              .setModel("stories")
              .build()
              .toByteArray());
      s.put(GenerationGrpc.getGenerateMethod().getFullMethodName(), gen);
      s.put(GenerationGrpc.getGenerateStreamMethod().getFullMethodName(), gen);
      s.put(
          GenerationGrpc.getTokenizeMethod().getFullMethodName(),
          List.of(
              TokenizeRequest.newBuilder()
                  .setText("The dog ran")
                  .setAddBos(true)
                  .build()
                  .toByteArray()));
      s.put(
          GenerationGrpc.getListModelsMethod().getFullMethodName(),
          List.of(ListModelsRequest.getDefaultInstance().toByteArray()));
      s.put(
          ModelAdminGrpc.getGetModelStatusMethod().getFullMethodName(),
          List.of(GetModelStatusRequest.newBuilder().setModel("stories").build().toByteArray()));
      s.put(
          ModelAdminGrpc.getSwapMethod().getFullMethodName(),
          List.of(
              SwapRequest.newBuilder().setVersion("v1").build().toByteArray(),
              SwapRequest.newBuilder().setPath("no/such/model.gguf").build().toByteArray()));
      s.put(
          ModelAdminGrpc.getRollbackMethod().getFullMethodName(),
          List.of(RollbackRequest.newBuilder().setModel("stories").build().toByteArray()));
      s.put(
          ModelAdminGrpc.getWatchEventsMethod().getFullMethodName(),
          List.of(WatchEventsRequest.newBuilder().setModel("stories").build().toByteArray()));
      s.put(
          HealthGrpc.getCheckMethod().getFullMethodName(),
          List.of(HealthCheckRequest.newBuilder().setService("stories").build().toByteArray()));
      return s;
    }

    @Override
    public CompletableFuture<String> send(String operation, byte[] body) {
      MethodDescriptor<byte[], byte[]> m = methods.get(operation);
      boolean admin = m.getServiceName().equals(ModelAdminGrpc.SERVICE_NAME);
      // WatchEvents never ends by itself: a short deadline ends it (documented as such).
      long deadlineMs = operation.endsWith("WatchEvents") ? 200 : 5_000;
      CallOptions options =
          CallOptions.DEFAULT.withDeadlineAfter(deadlineMs, TimeUnit.MILLISECONDS);
      if (admin) {
        options = options.withCallCredentials(TestServer.bearer(TestServer.ADMIN_TOKEN));
      }
      ClientCall<byte[], byte[]> call = server.channel.newCall(m, options);
      CompletableFuture<String> done = new CompletableFuture<>();
      call.start(
          new ClientCall.Listener<>() {
            @Override
            public void onMessage(byte[] message) {
              call.request(1);
            }

            @Override
            public void onClose(Status status, Metadata trailers) {
              done.complete(status.getCode().name());
            }
          },
          new Metadata());
      call.request(1);
      call.sendMessage(body);
      call.halfClose();
      return done;
    }

    @Override
    public boolean documented(String operation, String outcome) {
      Status.Code code = Status.Code.valueOf(outcome);
      if (operation.startsWith("grpc.health")) {
        return code == Status.Code.OK
            || code == Status.Code.NOT_FOUND
            || code == Status.Code.INVALID_ARGUMENT;
      }
      return (operation.startsWith("kvant.v1.ModelAdmin") ? ADMIN : GENERATION).contains(code);
    }
  }

  /** One mutation of {@code seed}: the kinds a byte-level fuzzer uses, or fresh random bytes. */
  static byte[] mutate(byte[] seed, Random r) {
    byte[] b = seed.clone();
    switch (r.nextInt(8)) {
      case 0 -> { // flip bits
        for (int i = 0, n = 1 + r.nextInt(4); i < n && b.length > 0; i++) {
          b[r.nextInt(b.length)] ^= (byte) (1 << r.nextInt(8));
        }
      }
      case 1 -> { // replace a byte with a boundary value
        if (b.length > 0) {
          byte[] edge = {0, (byte) 0x7f, (byte) 0x80, (byte) 0xff, (byte) 0xc0, (byte) 0xed};
          b[r.nextInt(b.length)] = edge[r.nextInt(edge.length)];
        }
      }
      case 2 -> b = java.util.Arrays.copyOf(b, r.nextInt(b.length + 1)); // truncate
      case 3 -> { // insert random bytes
        int at = r.nextInt(b.length + 1);
        byte[] ins = new byte[1 + r.nextInt(8)];
        r.nextBytes(ins);
        byte[] out = new byte[b.length + ins.length];
        System.arraycopy(b, 0, out, 0, at);
        System.arraycopy(ins, 0, out, at, ins.length);
        System.arraycopy(b, at, out, at + ins.length, b.length - at);
        b = out;
      }
      case 4 -> { // duplicate the message (repeated fields grow, scalars are overwritten)
        byte[] out = new byte[b.length * 2];
        System.arraycopy(b, 0, out, 0, b.length);
        System.arraycopy(b, 0, out, b.length, b.length);
        b = out;
      }
      case 5 -> { // append a random field with a random wire type
        int field = 1 + r.nextInt(20);
        int wire = r.nextInt(6);
        byte[] payload = new byte[r.nextInt(12)];
        r.nextBytes(payload);
        byte[] out = new byte[b.length + 2 + payload.length];
        System.arraycopy(b, 0, out, 0, b.length);
        out[b.length] = (byte) ((field << 3) | wire);
        out[b.length + 1] = (byte) payload.length;
        System.arraycopy(payload, 0, out, b.length + 2, payload.length);
        b = out;
      }
      case 6 -> { // a string field with invalid UTF-8 appended: fields 1, 2, 6, 10 are strings
        int[] fields = {1, 2, 3, 6, 10};
        byte[] bad = {'a', (byte) 0xff, (byte) 0xc3, 'b'};
        byte[] out = new byte[b.length + 2 + bad.length];
        System.arraycopy(b, 0, out, 0, b.length);
        out[b.length] = (byte) ((fields[r.nextInt(fields.length)] << 3) | 2);
        out[b.length + 1] = (byte) bad.length;
        System.arraycopy(bad, 0, out, b.length + 2, bad.length);
        b = out;
      }
      default -> { // fresh random bytes
        b = new byte[r.nextInt(64)];
        r.nextBytes(b);
      }
    }
    return b;
  }

  @Test
  void randomAndMutatedRequestsGetDocumentedStatusesAndTheServerStillServes() throws Exception {
    long seed = System.nanoTime();
    Random r = new Random(seed);
    try (TestServer t = TestServer.builder().maxQueue(64).start()) {
      for (Surface surface : List.<Surface>of(new GrpcSurface(t))) {
        Map<String, List<byte[]>> seeds = surface.seeds();
        List<String> operations = new ArrayList<>(seeds.keySet());
        Map<String, Integer> outcomes = new TreeMap<>();
        List<String> undocumented = java.util.Collections.synchronizedList(new ArrayList<>());
        Semaphore slots = new Semaphore(IN_FLIGHT);
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(MAX_SECONDS);
        int cases = 0;
        while (cases < MAX_CASES && System.nanoTime() < end) {
          String op = operations.get(r.nextInt(operations.size()));
          List<byte[]> s = seeds.get(op);
          byte[] body = mutate(s.get(r.nextInt(s.size())), r);
          if (r.nextInt(4) == 0) {
            body = mutate(body, r); // sometimes two mutations
          }
          byte[] sent = body;
          slots.acquire();
          cases++;
          surface
              .send(op, body)
              .whenComplete(
                  (outcome, error) -> {
                    String o = error != null ? "ERROR " + error : outcome;
                    synchronized (outcomes) {
                      outcomes.merge(op.replaceAll(".*/", "") + " " + o, 1, Integer::sum);
                    }
                    if (error != null || !surface.documented(op, o)) {
                      undocumented.add(
                          op + " " + o + " for " + java.util.HexFormat.of().formatHex(sent));
                    }
                    slots.release();
                  });
        }
        assertThat(slots.tryAcquire(IN_FLIGHT, 60, TimeUnit.SECONDS)).isTrue();
        System.out.printf("FUZZ seed=%d cases=%d outcomes=%s%n", seed, cases, outcomes);
        assertThat(undocumented).as("seed %d", seed).isEmpty();
        assertThat(cases).isGreaterThan(100);
      }
      // Still serving: a normal request and the health check.
      var ok =
          t.blocking()
              .withDeadlineAfter(30, TimeUnit.SECONDS)
              .generate(
                  GenerateRequest.newBuilder().setText("Once upon a time").setMaxTokens(4).build());
      assertThat(ok.getUsage().getCompletionTokens()).isPositive();
      assertThat(
              HealthGrpc.newBlockingStub(t.channel)
                  .check(HealthCheckRequest.getDefaultInstance())
                  .getStatus())
          .isEqualTo(HealthCheckResponse.ServingStatus.SERVING);
      t.server.engineLoop().checkInvariants();
    }
  }
}
