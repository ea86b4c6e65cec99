package io.kvant.server.http;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpc.Status;
import io.kvant.api.v1.FinishReason;
import io.kvant.api.v1.GenerateChunk;
import io.kvant.api.v1.Usage;
import io.netty.buffer.ByteBuf;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.http.HttpContent;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Flow control of one SSE response: while the client does not read (the channel is not writable),
 * nothing is written and the outbox stays within its capacity by merging deltas; once the client
 * reads again, every token arrives, in order, then the end of the stream.
 */
class HttpStreamTest {
  static final ObjectMapper JSON = new ObjectMapper();
  // Netty's user-defined writability bit, standing here for a client that stopped reading.
  static final int STALLED = 1;

  @Test
  void aReaderThatStopsReadingGetsEveryTokenLaterWhileTheOutboxStaysBounded() throws Exception {
    EmbeddedChannel channel = new EmbeddedChannel();
    OpenAiRequest request =
        OpenAiRequest.completion(
            JSON.readTree("{\"model\":\"m\",\"prompt\":\"x\",\"stream\":true}"));
    boolean[] closed = {false};
    HttpStream stream =
        new HttpStream(
            channel,
            new OpenAiJson("cmpl-1", false, "m", 0, null),
            request,
            4,
            () -> closed[0] = true);

    channel.unsafe().outboundBuffer().setUserDefinedWritability(STALLED, false);
    assertThat(channel.isWritable()).isFalse();
    StringBuilder expected = new StringBuilder();
    for (int i = 0; i < 100; i++) {
      String text = " w" + i;
      expected.append(text);
      stream.chunk(GenerateChunk.newBuilder().setText(text).addTokenIds(i).build());
      channel.runPendingTasks();
      assertThat(stream.pending()).isLessThanOrEqualTo(4);
    }
    stream.end(
        GenerateChunk.newBuilder()
            .setFinishReason(FinishReason.FINISH_REASON_LENGTH)
            .setUsage(Usage.newBuilder().setPromptTokens(1).setCompletionTokens(100))
            .build(),
        Status.OK);
    channel.runPendingTasks();
    assertThat(channel.outboundMessages()).isEmpty();
    assertThat(closed[0]).isFalse();

    // The client reads again: Netty reports the change, on which the handler drains the stream.
    channel.unsafe().outboundBuffer().setUserDefinedWritability(STALLED, true);
    stream.drain();
    List<String> events = new ArrayList<>();
    for (Object m = channel.readOutbound(); m != null; m = channel.readOutbound()) {
      ByteBuf b = ((HttpContent) m).content();
      for (String line : b.toString(StandardCharsets.UTF_8).split("\n")) {
        if (line.startsWith("data: ")) {
          events.add(line.substring(6));
        }
      }
      b.release();
    }
    assertThat(closed[0]).isTrue();
    assertThat(events.getLast()).isEqualTo("[DONE]");
    StringBuilder received = new StringBuilder();
    for (String e : events.subList(0, events.size() - 1)) {
      received.append(JSON.readTree(e).at("/choices/0/text").asText());
    }
    assertThat(received.toString()).isEqualTo(expected.toString());
    // 100 deltas with at most 4 waiting: they went out merged into 4 events, then the last one.
    assertThat(events).hasSize(4 + 1 + 1);
    JsonNode last = JSON.readTree(events.get(events.size() - 2));
    assertThat(last.at("/choices/0/finish_reason").asText()).isEqualTo("length");
  }
}
