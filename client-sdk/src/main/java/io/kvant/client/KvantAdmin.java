package io.kvant.client;

import io.kvant.api.v1.ModelEvent;
import io.kvant.api.v1.ModelStatus;
import io.kvant.api.v1.SwapPolicy;
import io.kvant.api.v1.SwapRequest;
import io.kvant.api.v1.SwapResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * A client of the kvant {@code ModelAdmin} service: model status, version swaps, rollbacks and the
 * event stream. Every call carries the builder's bearer token; a missing or wrong one fails with
 * {@link UnauthenticatedException}. Results are the API's proto messages (immutable).
 *
 * <p>Admin calls address one sidecar each: with several targets, round robin picks which, so point
 * an admin client at the one sidecar to change.
 *
 * <p>Retries: {@link #status} and {@link #watchEvents} (before its first event) are retried as the
 * {@link RetryPolicy} says; {@code swap} and {@code rollback} change state and are never retried.
 *
 * <p>Thread-safe; {@link #close()} it when done.
 */
public interface KvantAdmin extends AutoCloseable {

  /** A builder; a target and a bearer token must be set. */
  static Builder builder() {
    return new Builder();
  }

  /**
   * Status of one model: serving version, versions in memory, KV cache usage.
   *
   * @param model model name; empty for the default model
   * @throws ModelNotFoundException for an unknown model
   * @throws KvantException if the call fails otherwise
   */
  ModelStatus status(String model);

  /**
   * Swaps a model to a version of the configured bucket; returns once the version serves.
   *
   * @param model model name; empty for the default model
   * @param version version id in the bucket
   * @param policy how in-flight requests move over; {@code SWAP_POLICY_UNSPECIFIED} for the
   *     server's default
   * @throws IllegalArgumentException if {@code version} is empty
   * @throws KvantException if the swap fails; {@code FAILED_PRECONDITION} (as {@link
   *     KvantRpcException}) if the version fails verification or the quality gate
   */
  SwapResponse swapToVersion(String model, String version, SwapPolicy policy);

  /**
   * Swaps a model to a model file or version folder on the sidecar's disk; as {@link
   * #swapToVersion}.
   *
   * @throws IllegalArgumentException if {@code path} is empty
   */
  SwapResponse swapToPath(String model, String path, SwapPolicy policy);

  /**
   * Sends a swap request as given (for options such as {@code skip_quality_gate}).
   *
   * @throws IllegalArgumentException if the request sets neither a version nor a path
   * @throws KvantException if the swap fails
   */
  SwapResponse swap(SwapRequest request);

  /**
   * Swaps a model back to the parent of its serving version.
   *
   * @throws KvantException if it fails; {@code FAILED_PRECONDITION} (as {@link KvantRpcException})
   *     if no parent is held
   */
  SwapResponse rollback(String model);

  /**
   * Streams reload and swap events, starting with those in the server's recent-events buffer. The
   * stream has no deadline (it ends only when closed or when the server ends it); close it to stop
   * watching.
   *
   * @param model model name; empty for every model
   */
  ResponseStream<ModelEvent> watchEvents(String model);

  /** Shuts the channel down, as {@link KvantClient#close()}. Idempotent. */
  @Override
  void close();

  /**
   * Builds a {@link KvantAdmin}; the same connection settings as {@link KvantClient.Builder}, but a
   * bearer token is required and the default deadline is 10 minutes (a swap downloads and checks
   * weights). Not thread-safe.
   */
  final class Builder {
    private final ChannelSettings settings = new ChannelSettings(Duration.ofMinutes(10));

    private Builder() {}

    /** See {@link KvantClient.Builder#targets(String...)}. */
    public Builder targets(String... targets) {
      settings.targets(List.of(targets));
      return this;
    }

    /** See {@link KvantClient.Builder#targets(List)}. */
    public Builder targets(List<String> targets) {
      settings.targets(targets);
      return this;
    }

    /** See {@link KvantClient.Builder#tls()}. */
    public Builder tls() {
      settings.tls();
      return this;
    }

    /** See {@link KvantClient.Builder#trustCertificate(Path)}. */
    public Builder trustCertificate(Path caCertificatePem) {
      settings.trustCertificate(caCertificatePem);
      return this;
    }

    /** See {@link KvantClient.Builder#clientCertificate(Path, Path)}. */
    public Builder clientCertificate(Path certificateChainPem, Path privateKeyPem) {
      settings.clientCertificate(certificateChainPem, privateKeyPem);
      return this;
    }

    /**
     * The admin token, sent as {@code authorization: Bearer <token>}; required.
     *
     * @throws IllegalArgumentException if empty or not printable ASCII without spaces
     */
    public Builder bearerToken(String token) {
      settings.bearerToken(token);
      return this;
    }

    /**
     * Deadline of every call but {@link KvantAdmin#watchEvents}; default 10 minutes.
     *
     * @throws IllegalArgumentException if not positive
     */
    public Builder defaultDeadline(Duration deadline) {
      settings.defaultDeadline(deadline);
      return this;
    }

    /** See {@link KvantClient.Builder#keepAlive(Duration, Duration)}. */
    public Builder keepAlive(Duration time, Duration timeout) {
      settings.keepAlive(time, timeout);
      return this;
    }

    /** See {@link KvantClient.Builder#maxInboundMessageSize(int)}. */
    public Builder maxInboundMessageSize(int bytes) {
      settings.maxInboundMessageSize(bytes);
      return this;
    }

    /** See {@link KvantClient.Builder#retryPolicy(RetryPolicy)}. */
    public Builder retryPolicy(RetryPolicy policy) {
      settings.retryPolicy(policy);
      return this;
    }

    /** See {@link KvantClient.Builder#overrideAuthority(String)}. */
    public Builder overrideAuthority(String authority) {
      settings.overrideAuthority(authority);
      return this;
    }

    /**
     * Makes the admin client.
     *
     * @throws IllegalStateException if no target or no bearer token was set
     * @throws java.io.UncheckedIOException if a PEM file cannot be read
     */
    public KvantAdmin build() {
      if (settings.token() == null) {
        throw new IllegalStateException(
            "bearerToken: the ModelAdmin service needs a token; set bearerToken(...)");
      }
      return new DefaultKvantAdmin(new Transport(settings.buildChannel(), settings));
    }
  }
}
