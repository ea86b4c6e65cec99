package io.kvant.server.grpc;

import io.grpc.Contexts;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.opentelemetry.context.Context;
import io.opentelemetry.context.propagation.ContextPropagators;
import io.opentelemetry.context.propagation.TextMapGetter;

/**
 * Reads the caller's trace context ({@code traceparent}/{@code tracestate} by default, whatever
 * {@code OTEL_PROPAGATORS} configures) from a call's metadata, so that kvant's {@code
 * kvant.generate} span continues the caller's trace. A call without one starts a new trace.
 */
public final class TraceContextInterceptor implements ServerInterceptor {
  private static final io.grpc.Context.Key<Context> CURRENT = io.grpc.Context.key("kvant-trace");

  private static final TextMapGetter<Metadata> GETTER =
      new TextMapGetter<>() {
        @Override
        public Iterable<String> keys(Metadata carrier) {
          return carrier.keys();
        }

        @Override
        public String get(Metadata carrier, String key) {
          if (carrier == null || key.endsWith(Metadata.BINARY_HEADER_SUFFIX)) {
            return null;
          }
          return carrier.get(Metadata.Key.of(key, Metadata.ASCII_STRING_MARSHALLER));
        }
      };

  private final ContextPropagators propagators;

  public TraceContextInterceptor(ContextPropagators propagators) {
    this.propagators = propagators;
  }

  /** The caller's trace context of the current call, or the root context. */
  public static Context current() {
    Context c = CURRENT.get();
    return c != null ? c : Context.root();
  }

  @Override
  public <Q, R> ServerCall.Listener<Q> interceptCall(
      ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
    Context parent = propagators.getTextMapPropagator().extract(Context.root(), headers, GETTER);
    return Contexts.interceptCall(
        io.grpc.Context.current().withValue(CURRENT, parent), call, headers, next);
  }
}
