package io.kvant.client;

import java.util.Iterator;

/**
 * The messages of a server-streaming call as a blocking iterator. Messages are read from the
 * network only as the iterator consumes them (gRPC manual flow control over a small bounded
 * buffer), so a slow reader holds the server back instead of buffering without bound.
 *
 * <p>Always close the stream (try-with-resources): closing before the end cancels the call on the
 * server. Not thread-safe, except {@link #close()}, which may be called from any thread and wakes a
 * reader blocked in {@link #hasNext()}.
 *
 * @param <T> the message type
 */
public interface ResponseStream<T> extends Iterator<T>, AutoCloseable {
  /**
   * Waits for the next message or the end of the stream.
   *
   * @return false at the end of the stream, or once it is closed
   * @throws KvantException if the call failed (the same exception on every later call); {@link
   *     CancelledException} if the thread was interrupted while waiting, which also closes the
   *     stream
   */
  @Override
  boolean hasNext();

  /**
   * The next message.
   *
   * @throws java.util.NoSuchElementException at the end of the stream
   * @throws KvantException as {@link #hasNext()}
   */
  @Override
  T next();

  /** The request id the call was sent with; never null. */
  String requestId();

  /** Cancels the call if it is still running and releases its buffer. Idempotent; never throws. */
  @Override
  void close();
}
