package io.kvant.client;

import io.kvant.api.v1.GenerateChunk;
import java.util.NoSuchElementException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.function.Function;

/**
 * A {@link ResponseStream} fed by a {@link StreamCall}. It requests {@code bufferSize} messages up
 * front and one more each time the reader takes one, so the queue never holds more than {@code
 * bufferSize} messages (plus the end marker).
 */
class BlockingStream<R, T> implements ResponseStream<T>, StreamCall.Sink<R> {
  private static final Object END = new Object();

  private record Failure(KvantException error) {}

  private final LinkedBlockingQueue<Object> queue = new LinkedBlockingQueue<>();
  private final Function<R, T> mapper;
  private final int bufferSize;
  private StreamCall<?, R> call;
  private T next;
  private boolean finished;
  private KvantException failure;
  private volatile boolean closed;

  BlockingStream(Function<R, T> mapper, int bufferSize) {
    this.mapper = mapper;
    this.bufferSize = bufferSize;
  }

  /** Binds the call (created with this object as its sink) and starts it. */
  final void start(StreamCall<?, R> call) {
    this.call = call;
    call.request(bufferSize);
    call.start();
  }

  @Override
  public final void onNext(R message) {
    queue.add(message);
  }

  @Override
  public final void onError(KvantException error) {
    queue.add(new Failure(error));
  }

  @Override
  public final void onComplete() {
    queue.add(END);
  }

  @Override
  public final boolean hasNext() {
    if (closed) {
      return false;
    }
    if (next != null) {
      return true;
    }
    if (failure != null) {
      throw failure;
    }
    if (finished) {
      return false;
    }
    Object o;
    try {
      o = queue.take();
    } catch (InterruptedException e) {
      close();
      Thread.currentThread().interrupt();
      throw Errors.interrupted(call.requestId(), e);
    }
    if (o == END) {
      finished = true;
      return false;
    }
    if (o instanceof Failure f) {
      finished = true;
      failure = f.error();
      throw failure;
    }
    @SuppressWarnings("unchecked")
    R message = (R) o;
    next = mapper.apply(message);
    // The reader took one message out of the buffer: let one more in.
    call.request(1);
    return true;
  }

  @Override
  public final T next() {
    if (!hasNext()) {
      throw new NoSuchElementException();
    }
    T t = next;
    next = null;
    return t;
  }

  @Override
  public final String requestId() {
    return call.requestId();
  }

  @Override
  public final void close() {
    if (closed) {
      return;
    }
    closed = true;
    call.cancel();
    queue.clear();
    queue.add(END);
  }

  /** The chunk stream of a GenerateStream call. */
  static final class Tokens extends BlockingStream<GenerateChunk, Chunk> implements TokenStream {
    Tokens(Function<GenerateChunk, Chunk> mapper, int bufferSize) {
      super(mapper, bufferSize);
    }
  }
}
