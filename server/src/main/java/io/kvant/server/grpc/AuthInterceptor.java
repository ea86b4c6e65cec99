package io.kvant.server.grpc;

import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Optional;
import java.util.Set;

/**
 * Requires {@code authorization: Bearer <token>} on the calls of the named services. Services not
 * named, and every service when no token is configured, pass through.
 *
 * <p>Tokens are compared in constant time so response timing says nothing about a guess.
 */
public final class AuthInterceptor implements ServerInterceptor {
  static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

  private final Set<String> services;
  private final Optional<byte[]> token;

  /**
   * @param services full service names (e.g. {@code kvant.v1.ModelAdmin}) that need the token
   * @param token the expected token; empty means the services are refused outright (an admin API
   *     with no credential configured must not be open)
   */
  public AuthInterceptor(Set<String> services, Optional<String> token) {
    this.services = Set.copyOf(services);
    this.token = token.map(t -> t.getBytes(StandardCharsets.UTF_8));
  }

  @Override
  public <Q, R> ServerCall.Listener<Q> interceptCall(
      ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
    String service = call.getMethodDescriptor().getServiceName();
    if (!services.contains(service)) {
      return next.startCall(call, headers);
    }
    if (token.isEmpty()) {
      call.close(
          Status.UNAUTHENTICATED.withDescription(
              service + " is disabled: no token is configured on the server"),
          new Metadata());
      return new ServerCall.Listener<>() {};
    }
    String header = headers.get(AUTHORIZATION);
    if (header == null || !header.regionMatches(true, 0, "Bearer ", 0, 7)) {
      call.close(
          Status.UNAUTHENTICATED.withDescription(
              "missing 'authorization: Bearer <token>' metadata"),
          new Metadata());
      return new ServerCall.Listener<>() {};
    }
    byte[] given = header.substring(7).strip().getBytes(StandardCharsets.UTF_8);
    if (!MessageDigest.isEqual(given, token.get())) {
      call.close(Status.UNAUTHENTICATED.withDescription("invalid token"), new Metadata());
      return new ServerCall.Listener<>() {};
    }
    return next.startCall(call, headers);
  }
}
