package io.kvant.server.grpc;

import io.grpc.Attributes;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.SecurityLevel;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerMethodDefinition;
import io.grpc.ServerServiceDefinition;
import io.grpc.ServiceDescriptor;
import io.grpc.Status;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;

/**
 * Makes a request message that does not parse an INVALID_ARGUMENT, instead of the UNKNOWN
 * ("Application error processing RPC") and stack trace grpc-java gives when a request's marshaller
 * throws.
 *
 * <p>How: each method of a service is re-registered with a pass-through request marshaller (the
 * transport hands over the message bytes, already bounded by the server's maximum inbound message
 * size), and the guard parses them with the method's own marshaller before the service sees them; a
 * failure closes the call with INVALID_ARGUMENT naming the request message and the parser's reason.
 * The service descriptor's schema is kept, so reflection still describes the service. Interceptors
 * are applied on top of a guarded definition as usual.
 */
public final class ParseGuard {
  private ParseGuard() {}

  private static final MethodDescriptor.Marshaller<byte[]> BYTES =
      new MethodDescriptor.Marshaller<>() {
        @Override
        public InputStream stream(byte[] value) {
          return new ByteArrayInputStream(value);
        }

        @Override
        public byte[] parse(InputStream stream) {
          try {
            return stream.readAllBytes();
          } catch (IOException e) {
            throw new UncheckedIOException(e);
          }
        }
      };

  /** {@code service} with every method's request parsing guarded. */
  public static ServerServiceDefinition guard(ServerServiceDefinition service) {
    ServiceDescriptor sd = service.getServiceDescriptor();
    List<ServerMethodDefinition<byte[], ?>> methods = new ArrayList<>();
    ServiceDescriptor.Builder descriptor =
        ServiceDescriptor.newBuilder(sd.getName()).setSchemaDescriptor(sd.getSchemaDescriptor());
    for (ServerMethodDefinition<?, ?> m : service.getMethods()) {
      ServerMethodDefinition<byte[], ?> g = guard(m);
      methods.add(g);
      descriptor.addMethod(g.getMethodDescriptor());
    }
    ServerServiceDefinition.Builder b = ServerServiceDefinition.builder(descriptor.build());
    methods.forEach(b::addMethod);
    return b.build();
  }

  private static <Q, R> ServerMethodDefinition<byte[], R> guard(ServerMethodDefinition<Q, R> def) {
    MethodDescriptor<Q, R> typed = def.getMethodDescriptor();
    MethodDescriptor<byte[], R> raw = typed.toBuilder(BYTES, typed.getResponseMarshaller()).build();
    ServerCallHandler<Q, R> inner = def.getServerCallHandler();
    ServerCallHandler<byte[], R> handler =
        (call, headers) -> {
          ServerCall.Listener<Q> listener = inner.startCall(new TypedCall<>(call, typed), headers);
          return new GuardedListener<>(call, typed, listener);
        };
    return ServerMethodDefinition.create(raw, handler);
  }

  /** Parses each message; after a failure, the call is closed and the service hears no more. */
  private static final class GuardedListener<Q, R> extends ServerCall.Listener<byte[]> {
    private final ServerCall<byte[], R> call;
    private final MethodDescriptor<Q, R> method;
    private final ServerCall.Listener<Q> inner;
    private boolean failed;

    GuardedListener(
        ServerCall<byte[], R> call, MethodDescriptor<Q, R> method, ServerCall.Listener<Q> inner) {
      this.call = call;
      this.method = method;
      this.inner = inner;
    }

    @Override
    public void onMessage(byte[] message) {
      if (failed) {
        return;
      }
      Q parsed;
      try {
        parsed = method.parseRequest(new ByteArrayInputStream(message));
      } catch (RuntimeException e) {
        failed = true;
        call.close(
            Status.INVALID_ARGUMENT.withDescription(
                "request: not a valid " + method.getBareMethodName() + " request (" + why(e) + ")"),
            new Metadata());
        return;
      }
      inner.onMessage(parsed);
    }

    private static String why(Throwable e) {
      Throwable root = e;
      while (root.getCause() != null && root.getCause() != root) {
        root = root.getCause();
      }
      String m = root.getMessage() == null ? root.getClass().getSimpleName() : root.getMessage();
      return m.length() > 200 ? m.substring(0, 200) : m;
    }

    @Override
    public void onHalfClose() {
      if (!failed) {
        inner.onHalfClose();
      }
    }

    @Override
    public void onCancel() {
      inner.onCancel();
    }

    @Override
    public void onComplete() {
      inner.onComplete();
    }

    @Override
    public void onReady() {
      if (!failed) {
        inner.onReady();
      }
    }
  }

  /** The call as the service expects it: its own method descriptor, everything else passed on. */
  private static final class TypedCall<Q, R> extends ServerCall<Q, R> {
    private final ServerCall<byte[], R> raw;
    private final MethodDescriptor<Q, R> method;

    TypedCall(ServerCall<byte[], R> raw, MethodDescriptor<Q, R> method) {
      this.raw = raw;
      this.method = method;
    }

    @Override
    public void request(int numMessages) {
      raw.request(numMessages);
    }

    @Override
    public void sendHeaders(Metadata headers) {
      raw.sendHeaders(headers);
    }

    @Override
    public void sendMessage(R message) {
      raw.sendMessage(message);
    }

    @Override
    public boolean isReady() {
      return raw.isReady();
    }

    @Override
    public void close(Status status, Metadata trailers) {
      raw.close(status, trailers);
    }

    @Override
    public boolean isCancelled() {
      return raw.isCancelled();
    }

    @Override
    public void setMessageCompression(boolean enabled) {
      raw.setMessageCompression(enabled);
    }

    @Override
    public void setCompression(String compressor) {
      raw.setCompression(compressor);
    }

    @Override
    public void setOnReadyThreshold(int numBytes) {
      raw.setOnReadyThreshold(numBytes);
    }

    @Override
    public SecurityLevel getSecurityLevel() {
      return raw.getSecurityLevel();
    }

    @Override
    public Attributes getAttributes() {
      return raw.getAttributes();
    }

    @Override
    public String getAuthority() {
      return raw.getAuthority();
    }

    @Override
    public MethodDescriptor<Q, R> getMethodDescriptor() {
      return method;
    }
  }
}
