package io.kvant.server.http;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.grpc.Status;
import io.kvant.api.v1.GenerateChunk;
import io.kvant.server.grpc.ResponseSink;
import io.kvant.server.grpc.StreamOutbox;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.handler.codec.http.DefaultHttpContent;
import io.netty.handler.codec.http.LastHttpContent;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;

/**
 * One server-sent-events response, flow-controlled as the gRPC streams are: the engine loop offers
 * chunks without ever blocking; they wait in a bounded outbox (past {@code capacity}, a new delta
 * is merged into the last waiting chunk, as {@link StreamOutbox} does), and are written only on the
 * channel's event loop while the channel is writable, i.e. while Netty's outbound buffer is under
 * its high-water mark. A slow reader thus holds at most its own output, and the engine never waits.
 */
final class HttpStream implements ResponseSink.Delivery {
  private final Channel channel;
  private final OpenAiJson json;
  private final boolean chat;
  private final boolean includeUsage;
  private final boolean withLogprobs;
  private final int capacity;
  private final Runnable onClosed;
  private final ArrayDeque<GenerateChunk> pending = new ArrayDeque<>();
  private GenerateChunk last;
  private Status terminal;
  private boolean roleSent;
  private boolean closed;

  HttpStream(
      Channel channel, OpenAiJson json, OpenAiRequest request, int capacity, Runnable onClosed) {
    this.channel = channel;
    this.json = json;
    this.chat = request.chat;
    this.includeUsage = request.includeUsage;
    this.withLogprobs = request.logprobs > 0;
    this.capacity = capacity;
    this.onClosed = onClosed;
  }

  @Override
  public void chunk(GenerateChunk chunk) {
    synchronized (this) {
      if (pending.size() >= capacity) {
        pending.addLast(StreamOutbox.merge(pending.pollLast(), chunk));
      } else {
        pending.addLast(chunk);
      }
    }
    channel.eventLoop().execute(this::drain);
  }

  @Override
  public void end(GenerateChunk lastChunk, Status status) {
    synchronized (this) {
      last = lastChunk;
      terminal = status;
    }
    channel.eventLoop().execute(this::drain);
  }

  /** Writes what the client can take now; on the event loop (also on writability changes). */
  void drain() {
    if (closed) {
      return;
    }
    if (!channel.isActive()) {
      closed = true;
      return;
    }
    if (chat && !roleSent) {
      roleSent = true;
      write(json.roleChunk(version(), includeUsage));
    }
    while (channel.isWritable()) {
      GenerateChunk next;
      synchronized (this) {
        next = pending.pollFirst();
      }
      if (next == null) {
        break;
      }
      write(json.chunk(next, withLogprobs, includeUsage));
    }
    Status status;
    GenerateChunk end;
    synchronized (this) {
      if (!pending.isEmpty() || terminal == null) {
        channel.flush();
        return;
      }
      status = terminal;
      end = last;
    }
    closed = true;
    if (status.isOk()) {
      write(json.chunk(end, false, includeUsage));
      if (includeUsage) {
        write(json.usageChunk(end));
      }
    } else {
      write(OpenAiJson.error(StatusErrors.of(status, chat)));
    }
    channel.write(
        new DefaultHttpContent(Unpooled.copiedBuffer("data: [DONE]\n\n", StandardCharsets.UTF_8)));
    channel.writeAndFlush(LastHttpContent.EMPTY_LAST_CONTENT);
    onClosed.run();
  }

  /** Chunks waiting for the client (at most {@code capacity}). */
  synchronized int pending() {
    return pending.size();
  }

  private String version() {
    synchronized (this) {
      GenerateChunk first = pending.peekFirst();
      return first != null ? first.getModelVersion() : last != null ? last.getModelVersion() : "";
    }
  }

  private void write(ObjectNode event) {
    channel.write(
        new DefaultHttpContent(
            Unpooled.copiedBuffer("data: " + event + "\n\n", StandardCharsets.UTF_8)));
  }
}
