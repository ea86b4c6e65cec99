package io.kvant.server.grpc;

import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.kvant.api.v1.GenerateChunk;
import java.util.ArrayDeque;

/**
 * The bounded outbox between the engine loop and one response stream.
 *
 * <p>Design note: the engine loop must never wait for a client, and a stalled client must not make
 * the server buffer without bound. The engine {@link #offer}s chunks, which never blocks; the
 * stream is written only from {@link #drain}, which the call's on-ready handler (and every offer)
 * runs, and which writes only while {@code isReady()} holds, i.e. while gRPC's flow-control window
 * has room. When {@code capacity} chunks are already waiting, a new delta is merged into the last
 * waiting chunk (text appended, token ids and logprobs concatenated), so memory stays bounded by
 * the request's own output and the client still receives every token, only in fewer messages.
 *
 * <p>Thread-safety: {@code offer}, {@code complete}, {@code fail} and {@code drain} may be called
 * from any thread; all stream writes happen under the outbox lock, one writer at a time, as gRPC
 * requires.
 */
public final class StreamOutbox {
  private final ServerCallStreamObserver<GenerateChunk> stream;
  private final int capacity;
  private final ArrayDeque<GenerateChunk> pending = new ArrayDeque<>();
  private Status terminal;
  private boolean closed;
  private long merges;

  public StreamOutbox(ServerCallStreamObserver<GenerateChunk> stream, int capacity) {
    if (capacity < 1) {
      throw new IllegalArgumentException("capacity must be >= 1");
    }
    this.stream = stream;
    this.capacity = capacity;
    stream.setOnReadyHandler(this::drain);
  }

  /** Queues a chunk (merging when full) and writes what the client can take now. */
  public void offer(GenerateChunk chunk) {
    synchronized (this) {
      if (closed || terminal != null) {
        return;
      }
      if (pending.size() >= capacity) {
        pending.addLast(merge(pending.pollLast(), chunk));
        merges++;
      } else {
        pending.addLast(chunk);
      }
    }
    drain();
  }

  /** Ends the stream successfully once every queued chunk has been written. */
  public void complete() {
    finish(Status.OK);
  }

  /** Ends the stream with an error once every queued chunk has been written. */
  public void fail(Status status) {
    finish(status);
  }

  private void finish(Status status) {
    synchronized (this) {
      if (terminal == null) {
        terminal = status;
      }
    }
    drain();
  }

  /** Writes queued chunks while the call is ready; closes the call once all are written. */
  public synchronized void drain() {
    if (closed) {
      return;
    }
    if (stream.isCancelled()) {
      closed = true;
      pending.clear();
      return;
    }
    while (!pending.isEmpty() && stream.isReady()) {
      stream.onNext(pending.pollFirst());
    }
    if (pending.isEmpty() && terminal != null) {
      closed = true;
      if (terminal.isOk()) {
        stream.onCompleted();
      } else {
        stream.onError(terminal.asRuntimeException());
      }
    }
  }

  /** Chunks waiting for the client. */
  public synchronized int pending() {
    return pending.size();
  }

  /** How many deltas were merged because the client was slower than the engine. */
  public synchronized long merges() {
    return merges;
  }

  /** One chunk holding both: texts appended, token ids and logprobs concatenated, b's end. */
  public static GenerateChunk merge(GenerateChunk a, GenerateChunk b) {
    GenerateChunk.Builder m = a.toBuilder();
    m.setText(a.getText() + b.getText());
    m.addAllTokenIds(b.getTokenIdsList());
    m.addAllLogprobs(b.getLogprobsList());
    if (b.hasUsage()) {
      m.setUsage(b.getUsage());
    }
    if (b.getFinishReasonValue() != 0) {
      m.setFinishReason(b.getFinishReason());
    }
    return m.build();
  }
}
