package io.kvant.client;

import io.kvant.api.v1.ModelInfo;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Flow;

/**
 * A client of the kvant {@code Generation} service, over one gRPC channel that balances calls
 * round-robin over every sidecar its targets name.
 *
 * <p>Every call sends an {@code x-request-id} header (the params' request id, or a generated UUID),
 * has the client's default deadline, and is retried on {@code UNAVAILABLE} and {@code
 * RESOURCE_EXHAUSTED} as the {@link RetryPolicy} says (streams only before their first chunk).
 * Failures are thrown as {@link KvantException} subclasses.
 *
 * <p>Thread-safe: share one client for the whole application and {@link #close()} it at shutdown.
 *
 * <pre>{@code
 * try (KvantClient client = KvantClient.builder().targets("127.0.0.1:50051").build()) {
 *   Completion c = client.generate(GenerateParams.builder().prompt("Hello").maxTokens(32).build());
 *   System.out.println(c.text());
 * }
 * }</pre>
 */
public interface KvantClient extends AutoCloseable {

  /** A builder with the defaults documented on its methods; at least one target must be set. */
  static Builder builder() {
    return new Builder();
  }

  /**
   * Generates a whole completion, waiting for it in the calling thread.
   *
   * @throws KvantException if the call fails (after the retries the policy allows); {@link
   *     CancelledException} if the thread is interrupted, which also cancels the call
   */
  Completion generate(GenerateParams params);

  /**
   * Starts generating a whole completion. The future fails with a {@link KvantException}; {@link
   * CompletableFuture#cancel cancelling} it cancels the call. Never blocks.
   */
  CompletableFuture<Completion> generateAsync(GenerateParams params);

  /**
   * Starts a streamed completion, read chunk by chunk as a blocking iterator; see {@link
   * TokenStream}. Never blocks; errors surface from the stream's {@code hasNext()}.
   */
  TokenStream stream(GenerateParams params);

  /**
   * A cold publisher of a streamed completion: each subscription makes its own call, whose network
   * reads follow the subscriber's {@code request(n)}. It follows the Reactive Streams rules:
   * signals are serial, {@code request(n <= 0)} cancels the call and signals {@link
   * IllegalArgumentException}, {@code cancel()} cancels the call. A failed call signals a {@link
   * KvantException}.
   */
  Flow.Publisher<Chunk> publisher(GenerateParams params);

  /**
   * A chat completion: the server renders the messages with the model's chat template (a model
   * without one fails with {@code FAILED_PRECONDITION}, as a {@link KvantRpcException}) and
   * generates the assistant's answer. Blocks until it is complete; retried like {@link #generate}.
   */
  Completion chat(ChatParams params);

  /** A chat completion streamed chunk by chunk, as {@link #stream} streams a completion. */
  TokenStream chatStream(ChatParams params);

  /**
   * Tokenizes text with the default model's tokenizer, without BOS.
   *
   * @throws IllegalArgumentException if the text is over 1 MiB of UTF-8
   * @throws KvantException if the call fails
   */
  Tokenization tokenize(String text);

  /**
   * Tokenizes text with a model's tokenizer.
   *
   * @param model model name; empty for the default model
   * @param addBos whether to prepend the model's BOS token
   * @throws IllegalArgumentException if the text is over 1 MiB of UTF-8
   * @throws KvantException if the call fails ({@link ModelNotFoundException} for an unknown model)
   */
  Tokenization tokenize(String model, String text, boolean addBos);

  /**
   * The models the sidecar answering this call serves (with several sidecars behind the client,
   * that is one of them, chosen round-robin).
   *
   * @throws KvantException if the call fails
   */
  List<ModelInfo> listModels();

  /**
   * Shuts the channel down: new calls fail with {@link UnavailableException}, calls in flight get
   * up to 5 seconds to finish before they are cancelled. Idempotent.
   */
  @Override
  void close();

  /**
   * Builds a {@link KvantClient}. Not thread-safe.
   *
   * <p>Defaults: plaintext, no token, 60 s default deadline, no keepalive pings, 4 MiB max inbound
   * message, {@link RetryPolicy#defaults()}, 16-chunk stream buffer.
   */
  final class Builder {
    private final ChannelSettings settings = new ChannelSettings(Duration.ofSeconds(60));
    private int streamBufferSize = 16;

    private Builder() {}

    /**
     * Where the sidecars are: either {@code host:port} addresses (IPv6 in brackets), called
     * round-robin, or a single gRPC resolver URI such as {@code dns:///kvant.internal:50051}, whose
     * addresses (re-resolved by gRPC as they change) are called round-robin. A static list's host
     * names are looked up at start and after connection failures. {@code unix:///path/kvant.sock}
     * reaches a sidecar on a Unix domain socket (Linux; kvant's {@code --listen unix://...}), as
     * when kvant runs as a second container of the pod and shares the socket through a volume.
     *
     * @throws IllegalArgumentException if empty, malformed, or a URI is mixed with others
     */
    public Builder targets(String... targets) {
      settings.targets(List.of(targets));
      return this;
    }

    /** Like {@link #targets(String...)}. */
    public Builder targets(List<String> targets) {
      settings.targets(targets);
      return this;
    }

    /** Uses TLS, trusting the JDK's default certificate authorities. Default: plaintext. */
    public Builder tls() {
      settings.tls();
      return this;
    }

    /** Uses TLS, trusting the certificates of this PEM file (instead of the JDK's defaults). */
    public Builder trustCertificate(Path caCertificatePem) {
      settings.trustCertificate(caCertificatePem);
      return this;
    }

    /**
     * Uses mutual TLS, presenting this PEM certificate chain and PEM (PKCS#8) private key. Combine
     * with {@link #trustCertificate(Path)} for a private CA.
     */
    public Builder clientCertificate(Path certificateChainPem, Path privateKeyPem) {
      settings.clientCertificate(certificateChainPem, privateKeyPem);
      return this;
    }

    /**
     * Sends {@code authorization: Bearer <token>} on every call. Sent over plaintext too (the usual
     * loopback sidecar); use TLS when it crosses a network. Default: no token.
     *
     * @throws IllegalArgumentException if empty or not printable ASCII without spaces
     */
    public Builder bearerToken(String token) {
      settings.bearerToken(token);
      return this;
    }

    /**
     * Deadline of every call, covering all its attempts and, for a stream, its whole life. Default
     * 60 s.
     *
     * @throws IllegalArgumentException if not positive
     */
    public Builder defaultDeadline(Duration deadline) {
      settings.defaultDeadline(deadline);
      return this;
    }

    /**
     * Calls get no deadline (only for streams of unbounded length); see {@link #defaultDeadline}.
     */
    public Builder noDefaultDeadline() {
      settings.noDefaultDeadline();
      return this;
    }

    /**
     * Sends HTTP/2 keepalive pings every {@code time} while calls are active and drops the
     * connection if one is not answered within {@code timeout}. Default: off. The server must
     * permit pings this frequent, or it closes the connection.
     *
     * @throws IllegalArgumentException if either is not positive
     */
    public Builder keepAlive(Duration time, Duration timeout) {
      settings.keepAlive(time, timeout);
      return this;
    }

    /**
     * Largest response message accepted; default 4 MiB. A larger one fails the call with {@code
     * RESOURCE_EXHAUSTED}.
     *
     * @throws IllegalArgumentException if not positive
     */
    public Builder maxInboundMessageSize(int bytes) {
      settings.maxInboundMessageSize(bytes);
      return this;
    }

    /** How failed calls are retried; default {@link RetryPolicy#defaults()}. */
    public Builder retryPolicy(RetryPolicy policy) {
      settings.retryPolicy(policy);
      return this;
    }

    /**
     * The authority (TLS host name checked, {@code :authority} sent) for every target. Default: the
     * first {@code host:port} target, or the resolver URI's host.
     */
    public Builder overrideAuthority(String authority) {
      settings.overrideAuthority(authority);
      return this;
    }

    /**
     * Chunks a {@link TokenStream} may hold that its reader has not taken yet; default 16. The
     * server is held back once the buffer (plus the HTTP/2 flow-control window) is full.
     *
     * @throws IllegalArgumentException if below 1
     */
    public Builder streamBufferSize(int chunks) {
      if (chunks < 1) {
        throw new IllegalArgumentException("streamBufferSize: must be >= 1, got " + chunks);
      }
      this.streamBufferSize = chunks;
      return this;
    }

    /**
     * Makes the client. Connections are made lazily, on the first call.
     *
     * @throws IllegalStateException if no target was set
     * @throws java.io.UncheckedIOException if a PEM file cannot be read
     */
    public KvantClient build() {
      return new DefaultKvantClient(
          new Transport(settings.buildChannel(), settings), streamBufferSize);
    }
  }
}
