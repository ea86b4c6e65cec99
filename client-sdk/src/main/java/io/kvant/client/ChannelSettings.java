package io.kvant.client;

import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.NameResolverRegistry;
import io.grpc.TlsChannelCredentials;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.TimeUnit;

/** Connection settings shared by the client and admin builders, and the channel they make. */
final class ChannelSettings {
  private List<String> targets = List.of();
  private boolean tls;
  private Path trustCertificate;
  private Path clientCertificate;
  private Path clientKey;
  private String token;
  private Duration defaultDeadline;
  private Duration keepAliveTime;
  private Duration keepAliveTimeout;
  private int maxInboundMessageSize = 4 << 20;
  private RetryPolicy retryPolicy = RetryPolicy.defaults();
  private String authority;

  ChannelSettings(Duration defaultDeadline) {
    this.defaultDeadline = defaultDeadline;
  }

  void targets(List<String> targets) {
    List<String> copy = List.copyOf(targets);
    if (copy.isEmpty()) {
      throw new IllegalArgumentException("targets: must not be empty");
    }
    for (String t : copy) {
      if (isResolverUri(t)) {
        if (copy.size() > 1) {
          throw new IllegalArgumentException(
              "targets: a resolver URI (" + t + ") must be the only target");
        }
      } else {
        StaticResolverProvider.HostPort.parse(t);
      }
    }
    this.targets = copy;
  }

  /** A gRPC target URI ({@code dns:///host:port}, {@code unix:///path/kvant.sock}, ...). */
  private static boolean isResolverUri(String target) {
    return target.contains("://") || target.startsWith("unix:");
  }

  void tls() {
    tls = true;
  }

  void trustCertificate(Path pem) {
    trustCertificate = Objects.requireNonNull(pem, "trustCertificate");
    tls = true;
  }

  void clientCertificate(Path certPem, Path keyPem) {
    clientCertificate = Objects.requireNonNull(certPem, "certificate");
    clientKey = Objects.requireNonNull(keyPem, "privateKey");
    tls = true;
  }

  void bearerToken(String token) {
    Objects.requireNonNull(token, "token");
    if (token.isEmpty() || token.chars().anyMatch(c -> c < 0x21 || c > 0x7e)) {
      throw new IllegalArgumentException("token: must be non-empty printable ASCII without spaces");
    }
    this.token = token;
  }

  String token() {
    return token;
  }

  void defaultDeadline(Duration deadline) {
    this.defaultDeadline = positive("defaultDeadline", deadline);
  }

  void noDefaultDeadline() {
    this.defaultDeadline = null;
  }

  Duration defaultDeadline() {
    return defaultDeadline;
  }

  void keepAlive(Duration time, Duration timeout) {
    this.keepAliveTime = positive("keepAliveTime", time);
    this.keepAliveTimeout = positive("keepAliveTimeout", timeout);
  }

  void maxInboundMessageSize(int bytes) {
    if (bytes <= 0) {
      throw new IllegalArgumentException("maxInboundMessageSize: must be positive, got " + bytes);
    }
    this.maxInboundMessageSize = bytes;
  }

  void retryPolicy(RetryPolicy policy) {
    this.retryPolicy = Objects.requireNonNull(policy, "retryPolicy");
  }

  RetryPolicy retryPolicy() {
    return retryPolicy;
  }

  void overrideAuthority(String authority) {
    this.authority = Objects.requireNonNull(authority, "authority");
  }

  static Duration positive(String name, Duration d) {
    Objects.requireNonNull(d, name);
    if (d.isNegative() || d.isZero()) {
      throw new IllegalArgumentException(name + ": must be positive, got " + d);
    }
    return d;
  }

  /**
   * Makes the channel: round robin over the targets, the SDK's own retries only (gRPC's retries
   * off, so that the "never after the first chunk" rule is the SDK's to keep).
   *
   * @throws IllegalStateException if no target was set
   * @throws UncheckedIOException if a PEM file cannot be read or parsed
   */
  ManagedChannel buildChannel() {
    if (targets.isEmpty()) {
      throw new IllegalStateException("targets: at least one target must be set");
    }
    ChannelCredentials credentials = credentials();
    ManagedChannelBuilder<?> builder;
    if (isResolverUri(targets.get(0))) {
      builder = Grpc.newChannelBuilder(targets.get(0), credentials);
    } else {
      List<StaticResolverProvider.HostPort> list = new ArrayList<>();
      for (String t : targets) {
        list.add(StaticResolverProvider.HostPort.parse(t));
      }
      NameResolverRegistry registry = new NameResolverRegistry();
      // The default authority (TLS host name check, :authority header) is the first target's.
      registry.register(new StaticResolverProvider(list, targets.get(0)));
      builder =
          Grpc.newChannelBuilder(
              StaticResolverProvider.SCHEME + ":///kvant", credentials, registry);
    }
    builder
        .defaultLoadBalancingPolicy("round_robin")
        .disableRetry()
        .maxInboundMessageSize(maxInboundMessageSize)
        .userAgent("kvant-java-client");
    if (keepAliveTime != null) {
      builder
          .keepAliveTime(keepAliveTime.toNanos(), TimeUnit.NANOSECONDS)
          .keepAliveTimeout(keepAliveTimeout.toNanos(), TimeUnit.NANOSECONDS)
          .keepAliveWithoutCalls(false);
    }
    if (authority != null) {
      builder.overrideAuthority(authority);
    }
    return builder.build();
  }

  private ChannelCredentials credentials() {
    if (!tls) {
      return InsecureChannelCredentials.create();
    }
    TlsChannelCredentials.Builder b = TlsChannelCredentials.newBuilder();
    try {
      if (trustCertificate != null) {
        b.trustManager(trustCertificate.toFile());
      }
      if (clientCertificate != null) {
        b.keyManager(clientCertificate.toFile(), clientKey.toFile());
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read TLS certificates: " + e.getMessage(), e);
    }
    return b.build();
  }
}
