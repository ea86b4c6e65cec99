package io.kvant.client;

import io.grpc.ClientCall;
import io.grpc.Deadline;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

/**
 * One logical call (unary or server-streaming) made of one or more attempts, with demand-driven
 * gRPC flow control and the SDK's retry rule.
 *
 * <p>Flow control: the consumer's demand ({@link #request}) is forwarded to the current attempt's
 * {@link ClientCall#request}, so gRPC reads from the socket (and returns HTTP/2 window to the
 * server) only what the consumer asked for. At most {@link #MAX_IN_FLIGHT} messages are requested
 * from the transport at once, which keeps gRPC's int counters far from overflow when the consumer
 * asks for an unbounded number.
 *
 * <p>Retries: an attempt that fails with a retryable status before anything was delivered is
 * replaced by a new attempt after the policy's backoff, under the same deadline, request id and
 * outstanding demand. After the first message, a failure is delivered as is.
 *
 * <p>Thread-safety: {@link #start}, {@link #request} and {@link #cancel} may be called from any
 * thread; the sink's methods are called serially (gRPC serializes one call's callbacks, and a retry
 * only starts once the previous attempt has closed) and never while holding this object's lock.
 */
final class StreamCall<Q, R> {
  /** Receives the call's output; called serially. */
  interface Sink<R> {
    void onNext(R message);

    void onError(KvantException error);

    void onComplete();
  }

  static final int MAX_IN_FLIGHT = 1 << 16;
  static final Metadata.Key<String> REQUEST_ID =
      Metadata.Key.of("x-request-id", Metadata.ASCII_STRING_MARSHALLER);

  private final Transport transport;
  private final MethodDescriptor<Q, R> method;
  private final Q request;
  private final String requestId;
  private final Deadline deadline;
  private final RetryPolicy policy;
  private final Sink<R> sink;

  // All guarded by this.
  private boolean started;
  private boolean done;
  private boolean delivered;
  private int attempts;
  private long demand;
  private int inFlight;
  private ClientCall<Q, R> call;
  private Attempt current;
  private ScheduledFuture<?> pendingRetry;

  StreamCall(
      Transport transport,
      MethodDescriptor<Q, R> method,
      Q request,
      String requestId,
      Deadline deadline,
      RetryPolicy policy,
      Sink<R> sink) {
    this.transport = transport;
    this.method = method;
    this.request = request;
    this.requestId = requestId;
    this.deadline = deadline;
    this.policy = policy;
    this.sink = sink;
  }

  String requestId() {
    return requestId;
  }

  /** Starts the first attempt; demand requested before is honoured. */
  void start() {
    KvantException failure;
    synchronized (this) {
      if (started || done) {
        return;
      }
      started = true;
      failure = startAttemptLocked();
    }
    if (failure != null) {
      sink.onError(failure);
    }
  }

  /** Adds {@code n > 0} to the consumer's demand. */
  void request(long n) {
    synchronized (this) {
      if (done) {
        return;
      }
      demand = demand + n < 0 ? Long.MAX_VALUE : demand + n;
      topUpLocked();
    }
  }

  /** Cancels the call; the sink gets no further signal. Idempotent. */
  void cancel() {
    ClientCall<Q, R> toCancel;
    synchronized (this) {
      if (done) {
        return;
      }
      done = true;
      if (pendingRetry != null) {
        pendingRetry.cancel(false);
      }
      toCancel = call;
    }
    transport.waitingToRetry().remove(this);
    if (toCancel != null) {
      toCancel.cancel("cancelled by the client", null);
    }
  }

  /** Requests from the current attempt what the consumer wants and is not yet in flight. */
  private void topUpLocked() {
    if (call == null) {
      return;
    }
    long want = Math.min(demand, MAX_IN_FLIGHT) - inFlight;
    if (want > 0) {
      inFlight += (int) want;
      call.request((int) want);
    }
  }

  private KvantException startAttemptLocked() {
    attempts++;
    pendingRetry = null;
    inFlight = 0;
    Attempt attempt = new Attempt();
    current = attempt;
    Metadata headers = new Metadata();
    headers.put(REQUEST_ID, requestId);
    try {
      call = transport.channel().newCall(method, transport.callOptions(deadline));
      call.start(attempt, headers);
      topUpLocked();
      call.sendMessage(request);
      call.halfClose();
      return null;
    } catch (RuntimeException e) {
      done = true;
      if (call != null) {
        call.cancel("failed to start the call", e);
      }
      return Errors.from(
          Status.INTERNAL.withDescription("failed to start: " + e).withCause(e), requestId);
    }
  }

  /** The client closed while this call waited to retry: ends it instead. */
  void abortRetry() {
    synchronized (this) {
      if (done) {
        return;
      }
      done = true;
      if (pendingRetry != null) {
        pendingRetry.cancel(false);
      }
    }
    sink.onError(
        Errors.from(
            Status.UNAVAILABLE.withDescription(
                "the client was closed while the call waited to retry"),
            requestId));
  }

  private void retry() {
    transport.waitingToRetry().remove(this);
    KvantException failure;
    synchronized (this) {
      if (done) {
        return;
      }
      failure = startAttemptLocked();
    }
    if (failure != null) {
      sink.onError(failure);
    }
  }

  /** Listener of one attempt; callbacks of a superseded attempt are ignored. */
  private final class Attempt extends ClientCall.Listener<R> {
    @Override
    public void onMessage(R message) {
      synchronized (StreamCall.this) {
        if (done || current != this) {
          return;
        }
        delivered = true;
        inFlight--;
        demand--;
        // Keep an unbounded consumer fed without ever asking gRPC for more than MAX_IN_FLIGHT.
        if (inFlight < MAX_IN_FLIGHT / 2) {
          topUpLocked();
        }
      }
      sink.onNext(message);
    }

    @Override
    public void onClose(Status status, Metadata trailers) {
      KvantException failure = null;
      synchronized (StreamCall.this) {
        if (done || current != this) {
          return;
        }
        call = null;
        if (!status.isOk()) {
          long delay =
              delivered
                  ? -1
                  : policy.delayBeforeNextAttempt(
                      attempts, status.getCode(), deadline, transport.random());
          if (delay >= 0) {
            // Registered before scheduling so that a concurrent close() either sees it or
            // makes the scheduling fail.
            transport.waitingToRetry().add(StreamCall.this);
            try {
              pendingRetry =
                  transport
                      .scheduler()
                      .schedule(StreamCall.this::retry, delay, TimeUnit.NANOSECONDS);
              return;
            } catch (RejectedExecutionException e) {
              // The client is closing: surface the attempt's own failure.
              transport.waitingToRetry().remove(StreamCall.this);
            }
          }
          failure = Errors.from(status, requestId);
        }
        done = true;
      }
      if (failure != null) {
        sink.onError(failure);
      } else {
        sink.onComplete();
      }
    }
  }
}
