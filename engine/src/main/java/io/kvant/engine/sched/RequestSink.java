package io.kvant.engine.sched;

/**
 * Receives one request's output on the engine-loop thread. Implementations must never block and
 * should return quickly (the gRPC layer puts outputs in a bounded outbox drained by the transport);
 * an exception thrown here aborts the request with an error.
 */
public interface RequestSink {
  /** New tokens and text. */
  void onDelta(RequestDelta delta);

  /** The end; no call follows. */
  void onFinish(RequestFinal result);
}
