package io.kvant.client.testing;

import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.InsecureServerCredentials;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.Status;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.netty.shaded.io.netty.channel.EventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.MultiThreadIoEventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollIoHandler;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollServerDomainSocketChannel;
import io.grpc.netty.shaded.io.netty.channel.unix.DomainSocketAddress;
import io.grpc.stub.StreamObserver;
import io.kvant.api.v1.FinishReason;
import io.kvant.api.v1.GenerateChunk;
import io.kvant.api.v1.GenerateRequest;
import io.kvant.api.v1.GenerateResponse;
import io.kvant.api.v1.GenerationGrpc;
import io.kvant.api.v1.ListModelsRequest;
import io.kvant.api.v1.ListModelsResponse;
import io.kvant.api.v1.ModelInfo;
import io.kvant.api.v1.TokenizeRequest;
import io.kvant.api.v1.TokenizeResponse;
import io.kvant.api.v1.Usage;
import io.kvant.client.KvantClient;
import io.kvant.client.RetryPolicy;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.stream.Collectors;

/**
 * A fake kvant {@code Generation} server for tests of code that uses {@link KvantClient}: it
 * answers with scripted completions, records what it received, and can fail calls on demand. It
 * listens on a free port of 127.0.0.1 and speaks real gRPC over real sockets, so the code under
 * test uses the same client, channel and retries it uses in production.
 *
 * <p>How it answers: the {@linkplain Builder#respond responder} turns the prompt into the
 * completion text, the {@linkplain Builder#tokens tokenizer} cuts that text into tokens, and each
 * token is one stream chunk. It honours {@code max_tokens} (finish reason {@code LENGTH}), {@code
 * stop} (the text ends before the first stop string, finish reason {@code STOP}), {@code
 * return_token_ids}, {@code model} (any other name than its own gets {@code NOT_FOUND}) and the
 * request id (the request's, else the {@code x-request-id} header, else a generated one). Token ids
 * are a stable hash of each token's text. It does not sample, and ignores sampling parameters.
 *
 * <pre>{@code
 * try (FakeKvantServer server = FakeKvantServer.builder()
 *         .respond(prompt -> "echo " + prompt)
 *         .start()) {
 *   MyService service = new MyService(server.client());   // code under test
 *   service.summarize("hello");
 *   assertEquals("hello", server.requests().get(0).request().getText());
 *
 *   server.failNext(Status.Code.UNAVAILABLE, 2);           // next 2 calls fail, then succeed
 * }
 * }</pre>
 *
 * <p>Thread-safe. {@link #close()} stops the server and closes the client it made.
 */
public final class FakeKvantServer implements AutoCloseable {
  private static final Context.Key<String> HEADER_REQUEST_ID = Context.key("x-request-id");
  private static final Metadata.Key<String> REQUEST_ID =
      Metadata.Key.of("x-request-id", Metadata.ASCII_STRING_MARSHALLER);

  /**
   * A call the server received, failed or not.
   *
   * @param method {@code "Generate"} or {@code "GenerateStream"}
   * @param request the request as received
   * @param requestIdHeader the {@code x-request-id} header; empty if absent
   */
  public record ReceivedRequest(String method, GenerateRequest request, String requestIdHeader) {}

  private final Function<String, String> responder;
  private final Function<String, List<String>> tokenizer;
  private final String modelName;
  private final String modelVersion;
  private final Duration chunkDelay;
  private final int cachedPromptTokens;
  private final List<ReceivedRequest> received = new CopyOnWriteArrayList<>();
  private final Object failLock = new Object();
  private Status.Code failCode;
  private int failCount;
  private final Server server;
  private final Path socket;
  private final EventLoopGroup socketLoop;
  private KvantClient client;
  private boolean closed;

  private FakeKvantServer(Builder b) {
    this.responder = b.responder;
    this.tokenizer = b.tokenizer;
    this.modelName = b.modelName;
    this.modelVersion = b.modelVersion;
    this.chunkDelay = b.chunkDelay;
    this.cachedPromptTokens = b.cachedPromptTokens;
    ServerInterceptor captureRequestId =
        new ServerInterceptor() {
          @Override
          public <Q, R> ServerCall.Listener<Q> interceptCall(
              ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
            String id = headers.get(REQUEST_ID);
            Context ctx = Context.current().withValue(HEADER_REQUEST_ID, id == null ? "" : id);
            return Contexts.interceptCall(ctx, call, headers, next);
          }
        };
    this.socket = b.socket;
    NettyServerBuilder nb;
    if (socket == null) {
      this.socketLoop = null;
      nb =
          NettyServerBuilder.forAddress(
              new InetSocketAddress("127.0.0.1", 0), InsecureServerCredentials.create());
    } else {
      this.socketLoop = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
      nb =
          NettyServerBuilder.forAddress(
                  new DomainSocketAddress(socket.toString()), InsecureServerCredentials.create())
              .channelType(EpollServerDomainSocketChannel.class)
              .bossEventLoopGroup(socketLoop)
              .workerEventLoopGroup(socketLoop);
    }
    this.server =
        nb.addService(ServerInterceptors.intercept(new Service(), captureRequestId)).build();
  }

  /** A builder with the defaults documented on its methods. */
  public static Builder builder() {
    return new Builder();
  }

  /** The port it listens on, on 127.0.0.1; -1 when it listens on a Unix socket. */
  public int port() {
    return socket == null ? server.getPort() : -1;
  }

  /**
   * The target to give {@link KvantClient.Builder#targets}: {@code "127.0.0.1:<port>"}, or {@code
   * "unix://<path>"} for a server started with {@link Builder#unixSocket}.
   */
  public String target() {
    return socket == null ? "127.0.0.1:" + port() : "unix://" + socket.toAbsolutePath();
  }

  /**
   * A client of this server, made on first use and closed by {@link #close()}: default settings,
   * except a 10 s deadline and retries that wait at most 50 ms.
   */
  public synchronized KvantClient client() {
    if (closed) {
      throw new IllegalStateException("the fake server is closed");
    }
    if (client == null) {
      client =
          KvantClient.builder()
              .targets(target())
              .defaultDeadline(Duration.ofSeconds(10))
              .retryPolicy(
                  RetryPolicy.builder()
                      .initialBackoff(Duration.ofMillis(10))
                      .maxBackoff(Duration.ofMillis(50))
                      .build())
              .build();
    }
    return client;
  }

  /** Every {@code Generate} and {@code GenerateStream} call received so far, oldest first. */
  public List<ReceivedRequest> requests() {
    return List.copyOf(received);
  }

  /** Forgets the recorded requests. */
  public void clearRequests() {
    received.clear();
  }

  /**
   * Makes the next {@code times} {@code Generate}/{@code GenerateStream} calls fail with {@code
   * code} before producing anything (they are still recorded), replacing any failures still
   * pending.
   *
   * @throws IllegalArgumentException if {@code code} is OK or {@code times} is negative
   */
  public void failNext(Status.Code code, int times) {
    if (code == Status.Code.OK || times < 0) {
      throw new IllegalArgumentException("failNext: needs a non-OK code and times >= 0");
    }
    synchronized (failLock) {
      failCode = code;
      failCount = times;
    }
  }

  /** Stops the server (cancelling calls in flight) and closes {@link #client()}. Idempotent. */
  @Override
  public void close() {
    KvantClient c;
    synchronized (this) {
      if (closed) {
        return;
      }
      closed = true;
      c = client;
    }
    if (c != null) {
      c.close();
    }
    server.shutdownNow();
    try {
      server.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    if (socketLoop != null) {
      socketLoop.shutdownGracefully(0, 1, TimeUnit.SECONDS);
      try {
        java.nio.file.Files.deleteIfExists(socket);
      } catch (IOException e) {
        // a leftover socket file in a test's folder is harmless
      }
    }
  }

  private Status takeFailure() {
    synchronized (failLock) {
      if (failCount > 0) {
        failCount--;
        return Status.fromCode(failCode).withDescription("injected by FakeKvantServer");
      }
      return null;
    }
  }

  private static int tokenId(String piece) {
    return Math.floorMod(piece.hashCode(), 32_000);
  }

  /** The scripted completion of one request: its chunks, the last one carrying the finish. */
  private List<GenerateChunk> complete(GenerateRequest request, String requestId) {
    String prompt =
        request.hasTokenIds()
            ? request.getTokenIds().getIdsList().stream()
                .map(String::valueOf)
                .collect(Collectors.joining(" "))
            : request.getText();
    int promptTokens =
        request.hasTokenIds()
            ? request.getTokenIds().getIdsCount()
            : tokenizer.apply(prompt).size();
    List<String> tokens = tokenizer.apply(responder.apply(prompt));
    FinishReason finish = FinishReason.FINISH_REASON_STOP;
    if (request.getMaxTokens() > 0 && tokens.size() > request.getMaxTokens()) {
      tokens = tokens.subList(0, request.getMaxTokens());
      finish = FinishReason.FINISH_REASON_LENGTH;
    }
    // The text ends before the earliest stop string; the token holding it is the last one.
    int cut = firstStop(String.join("", tokens), request.getStopList());
    List<GenerateChunk> chunks = new ArrayList<>();
    int offset = 0;
    int generated = 0;
    for (String token : tokens) {
      generated++;
      String piece =
          cut < 0 ? token : token.substring(0, Math.max(0, Math.min(token.length(), cut - offset)));
      GenerateChunk.Builder c = chunkBuilder(requestId).setText(piece);
      if (request.getReturnTokenIds()) {
        c.addTokenIds(tokenId(token));
      }
      chunks.add(c.build());
      offset += token.length();
      if (cut >= 0 && offset >= cut) {
        finish = FinishReason.FINISH_REASON_STOP;
        break;
      }
    }
    Usage usage =
        Usage.newBuilder()
            .setPromptTokens(promptTokens)
            .setCompletionTokens(generated)
            .setCachedPromptTokens(Math.min(cachedPromptTokens, promptTokens))
            .build();
    GenerateChunk.Builder last =
        chunks.isEmpty() ? chunkBuilder(requestId) : chunks.remove(chunks.size() - 1).toBuilder();
    chunks.add(last.setFinishReason(finish).setUsage(usage).build());
    return chunks;
  }

  private GenerateChunk.Builder chunkBuilder(String requestId) {
    return GenerateChunk.newBuilder().setModelVersion(modelVersion).setRequestId(requestId);
  }

  private static int firstStop(String s, List<String> stops) {
    int best = -1;
    for (String stop : stops) {
      int i = s.indexOf(stop);
      if (i >= 0 && (best < 0 || i < best)) {
        best = i;
      }
    }
    return best;
  }

  /** Records the call and returns its failure, or its request id when it may proceed. */
  private Object admit(String method, GenerateRequest request) {
    String header = HEADER_REQUEST_ID.get();
    received.add(new ReceivedRequest(method, request, header == null ? "" : header));
    Status failure = takeFailure();
    if (failure != null) {
      return failure;
    }
    if (!request.getModel().isEmpty() && !request.getModel().equals(modelName)) {
      return Status.NOT_FOUND.withDescription("model: unknown model '" + request.getModel() + "'");
    }
    if (!request.hasTokenIds() && request.getText().isEmpty()) {
      return Status.INVALID_ARGUMENT.withDescription("prompt: must not be empty");
    }
    if (!request.getRequestId().isEmpty()) {
      return request.getRequestId();
    }
    return header == null || header.isEmpty() ? UUID.randomUUID().toString() : header;
  }

  private final class Service extends GenerationGrpc.GenerationImplBase {
    @Override
    public void generate(GenerateRequest request, StreamObserver<GenerateResponse> out) {
      Object admitted = admit("Generate", request);
      if (admitted instanceof Status s) {
        out.onError(s.asRuntimeException());
        return;
      }
      List<GenerateChunk> chunks = complete(request, (String) admitted);
      GenerateResponse.Builder r = GenerateResponse.newBuilder();
      StringBuilder text = new StringBuilder();
      for (GenerateChunk c : chunks) {
        text.append(c.getText());
        r.addAllTokenIds(c.getTokenIdsList());
      }
      GenerateChunk last = chunks.get(chunks.size() - 1);
      out.onNext(
          r.setText(text.toString())
              .setFinishReason(last.getFinishReason())
              .setUsage(last.getUsage())
              .setModelVersion(modelVersion)
              .setRequestId((String) admitted)
              .build());
      out.onCompleted();
    }

    @Override
    public void generateStream(GenerateRequest request, StreamObserver<GenerateChunk> out) {
      Object admitted = admit("GenerateStream", request);
      if (admitted instanceof Status s) {
        out.onError(s.asRuntimeException());
        return;
      }
      for (GenerateChunk c : complete(request, (String) admitted)) {
        if (!chunkDelay.isZero()) {
          try {
            Thread.sleep(chunkDelay.toMillis());
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            out.onError(Status.CANCELLED.asRuntimeException());
            return;
          }
        }
        if (Context.current().isCancelled()) {
          return;
        }
        out.onNext(c);
      }
      out.onCompleted();
    }

    @Override
    public void tokenize(TokenizeRequest request, StreamObserver<TokenizeResponse> out) {
      if (!request.getModel().isEmpty() && !request.getModel().equals(modelName)) {
        out.onError(
            Status.NOT_FOUND
                .withDescription("model: unknown model '" + request.getModel() + "'")
                .asRuntimeException());
        return;
      }
      TokenizeResponse.Builder r = TokenizeResponse.newBuilder();
      if (request.getAddBos()) {
        r.addTokenIds(1).addPieces("<s>");
      }
      for (String piece : tokenizer.apply(request.getText())) {
        r.addTokenIds(tokenId(piece)).addPieces(piece);
      }
      out.onNext(r.build());
      out.onCompleted();
    }

    @Override
    public void listModels(ListModelsRequest request, StreamObserver<ListModelsResponse> out) {
      out.onNext(
          ListModelsResponse.newBuilder()
              .addModels(
                  ModelInfo.newBuilder()
                      .setName(modelName)
                      .setServingVersion(modelVersion)
                      .setArchitecture("fake")
                      .setContextLength(4096)
                      .setVocabSize(32_000)
                      .setWeights("f32")
                      .setKvCacheType("f32"))
              .build());
      out.onCompleted();
    }
  }

  /** Builds a {@link FakeKvantServer}. Not thread-safe. */
  public static final class Builder {
    private Function<String, String> responder = prompt -> "You said: " + prompt;
    private Function<String, List<String>> tokenizer = Builder::splitBeforeSpaces;
    private String modelName = "fake-model";
    private String modelVersion = "fake-v1";
    private Duration chunkDelay = Duration.ZERO;
    private int cachedPromptTokens;
    private Path socket;

    private Builder() {}

    /**
     * Listens on a Unix domain socket at {@code path} instead of TCP (Linux, through the epoll
     * transport in grpc-netty-shaded): to test code that talks to a kvant sidecar over the socket
     * of a shared volume. The path must not exist yet.
     */
    public Builder unixSocket(Path path) {
      this.socket = Objects.requireNonNull(path, "path");
      return this;
    }

    /**
     * How a prompt is answered: prompt in, completion text out. A token-id prompt is passed as its
     * ids joined by spaces. Default: {@code "You said: " + prompt}. Called from gRPC threads.
     */
    public Builder respond(Function<String, String> responder) {
      this.responder = Objects.requireNonNull(responder, "responder");
      return this;
    }

    /** Answers every prompt with the same text. */
    public Builder respond(String completion) {
      Objects.requireNonNull(completion, "completion");
      return respond(prompt -> completion);
    }

    /**
     * How text is cut into tokens, which are the stream's chunks and what {@code max_tokens}, usage
     * and {@code Tokenize} count. Default: a new token before each space ({@code "a b"} is {@code
     * ["a", " b"]}). The tokens must join back into the text.
     */
    public Builder tokens(Function<String, List<String>> tokenizer) {
      this.tokenizer = Objects.requireNonNull(tokenizer, "tokenizer");
      return this;
    }

    /** The one model served: its name, default {@code "fake-model"}. */
    public Builder modelName(String name) {
      this.modelName = Objects.requireNonNull(name, "name");
      return this;
    }

    /** The version reported in every response, default {@code "fake-v1"}. */
    public Builder modelVersion(String version) {
      this.modelVersion = Objects.requireNonNull(version, "version");
      return this;
    }

    /** A pause before each streamed chunk, to simulate generation speed; default none. */
    public Builder chunkDelay(Duration delay) {
      if (delay.isNegative()) {
        throw new IllegalArgumentException("chunkDelay: must not be negative, got " + delay);
      }
      this.chunkDelay = delay;
      return this;
    }

    /**
     * How many of each request's prompt tokens the final usage reports as served from a prefix
     * cache (at most the prompt's own count); default 0. The fake caches nothing: this only lets
     * clients test how they read the field.
     */
    public Builder cachedPromptTokens(int tokens) {
      if (tokens < 0) {
        throw new IllegalArgumentException(
            "cachedPromptTokens: must not be negative, got " + tokens);
      }
      this.cachedPromptTokens = tokens;
      return this;
    }

    /**
     * Starts the server on a free port of 127.0.0.1 (or on the {@link #unixSocket}).
     *
     * @throws UncheckedIOException if it cannot bind
     */
    public FakeKvantServer start() {
      FakeKvantServer fake = new FakeKvantServer(this);
      try {
        fake.server.start();
      } catch (IOException e) {
        throw new UncheckedIOException("cannot start the fake kvant server", e);
      }
      return fake;
    }

    private static List<String> splitBeforeSpaces(String text) {
      List<String> out = new ArrayList<>();
      int start = 0;
      for (int i = 1; i < text.length(); i++) {
        if (text.charAt(i) == ' ') {
          out.add(text.substring(start, i));
          start = i;
        }
      }
      if (start < text.length()) {
        out.add(text.substring(start));
      }
      return out;
    }
  }
}
