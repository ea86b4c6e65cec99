package io.kvant.server.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.stub.StreamObserver;
import io.kvant.api.v1.FinishReason;
import io.kvant.api.v1.GenerateChunk;
import io.kvant.api.v1.GenerateRequest;
import io.kvant.api.v1.GenerateResponse;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** 32 concurrent greedy streams give exactly the outputs the same requests give one at a time. */
class ConcurrentStreamsTest {
  static TestServer server;

  @BeforeAll
  static void start() throws Exception {
    server = TestServer.builder().start();
  }

  @AfterAll
  static void stop() throws Exception {
    server.close();
  }

  static final String[] OPENINGS = {
    "Once upon a time",
    "The little dog",
    "Lily and Tom",
    "One day, a bird",
    "The sun was",
    "A big red ball",
    "Mom said",
    "The cat"
  };

  static GenerateRequest request(int i) {
    // Shared openings exercise the prefix cache; the suffix makes every prompt different.
    return GenerateRequest.newBuilder()
        .setText(OPENINGS[i % OPENINGS.length] + (i % 3 == 0 ? "" : " and friend " + i))
        .setMaxTokens(24 + (i % 5) * 8)
        .setReturnTokenIds(true)
        .build();
  }

  @Test
  void thirtyTwoConcurrentStreamsMatchSequentialRuns() throws Exception {
    int n = 32;
    List<GenerateResponse> alone = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      alone.add(server.blocking().generate(request(i)));
    }
    List<CompletableFuture<List<GenerateChunk>>> streams = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      CompletableFuture<List<GenerateChunk>> f = new CompletableFuture<>();
      List<GenerateChunk> chunks = new ArrayList<>();
      server
          .async()
          .generateStream(
              request(i),
              new StreamObserver<>() {
                @Override
                public void onNext(GenerateChunk c) {
                  chunks.add(c);
                }

                @Override
                public void onError(Throwable t) {
                  f.completeExceptionally(t);
                }

                @Override
                public void onCompleted() {
                  f.complete(chunks);
                }
              });
      streams.add(f);
    }
    for (int i = 0; i < n; i++) {
      List<GenerateChunk> chunks = streams.get(i).get(60, TimeUnit.SECONDS);
      List<Integer> ids = new ArrayList<>();
      StringBuilder text = new StringBuilder();
      for (GenerateChunk c : chunks) {
        ids.addAll(c.getTokenIdsList());
        text.append(c.getText());
      }
      GenerateChunk last = chunks.get(chunks.size() - 1);
      GenerateResponse expected = alone.get(i);
      assertThat(ids).as("request %d ids", i).isEqualTo(expected.getTokenIdsList());
      assertThat(text.toString()).as("request %d text", i).isEqualTo(expected.getText());
      assertThat(last.getFinishReason()).isEqualTo(expected.getFinishReason());
      assertThat(last.getUsage().getCompletionTokens()).isEqualTo(ids.size());
      assertThat(last.getModelVersion()).isEqualTo(expected.getModelVersion()).isNotEmpty();
      assertThat(expected.getFinishReason())
          .isIn(FinishReason.FINISH_REASON_LENGTH, FinishReason.FINISH_REASON_STOP);
    }
    server.server.engineLoop().checkInvariants();
  }
}
