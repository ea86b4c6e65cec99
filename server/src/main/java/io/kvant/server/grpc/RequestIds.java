package io.kvant.server.grpc;

import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.ForwardingServerCall.SimpleForwardingServerCall;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import java.util.UUID;

/**
 * Carries the {@code x-request-id} of a call: taken from the client's metadata when present,
 * generated otherwise, made available to the service through the gRPC {@link Context}, and echoed
 * in the response headers so the client can quote it.
 */
public final class RequestIds implements ServerInterceptor {
  public static final Metadata.Key<String> HEADER =
      Metadata.Key.of("x-request-id", Metadata.ASCII_STRING_MARSHALLER);
  static final Context.Key<String> CURRENT = Context.key("kvant-request-id");

  /** The id of the current call: the metadata's, or a generated one. */
  public static String current() {
    String id = CURRENT.get();
    return id != null ? id : UUID.randomUUID().toString();
  }

  @Override
  public <Q, R> ServerCall.Listener<Q> interceptCall(
      ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
    String given = headers.get(HEADER);
    String id;
    try {
      id =
          given == null || given.isEmpty()
              ? UUID.randomUUID().toString()
              : RequestValidator.checkRequestId(given, "x-request-id");
    } catch (InvalidFieldException e) {
      call.close(io.grpc.Status.INVALID_ARGUMENT.withDescription(e.getMessage()), new Metadata());
      return new ServerCall.Listener<>() {};
    }
    ServerCall<Q, R> echoing =
        new SimpleForwardingServerCall<>(call) {
          @Override
          public void sendHeaders(Metadata responseHeaders) {
            responseHeaders.put(HEADER, id);
            super.sendHeaders(responseHeaders);
          }
        };
    return Contexts.interceptCall(Context.current().withValue(CURRENT, id), echoing, headers, next);
  }
}
