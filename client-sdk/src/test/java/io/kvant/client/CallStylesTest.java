package io.kvant.client;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.api.v1.ModelInfo;
import io.kvant.client.testing.FakeKvantServer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(20)
class CallStylesTest {
  private FakeKvantServer server;
  private KvantClient client;

  @BeforeEach
  void start() {
    server = FakeKvantServer.builder().respond(p -> "the answer to " + p + " is 42").start();
    client = server.client();
  }

  @AfterEach
  void stop() {
    server.close();
  }

  private static String text(List<Chunk> chunks) {
    return chunks.stream().map(Chunk::text).collect(Collectors.joining());
  }

  private static List<Integer> ids(List<Chunk> chunks) {
    return chunks.stream().flatMap(c -> c.tokenIds().stream()).toList();
  }

  @Test
  void everyCallStyleGivesTheSameOutput() throws Exception {
    GenerateParams params =
        GenerateParams.builder()
            .prompt("life")
            .maxTokens(100)
            .returnTokenIds(true)
            .requestId("req-1")
            .build();

    Completion blocking = client.generate(params);
    Completion async = client.generateAsync(params).get(5, TimeUnit.SECONDS);
    List<Chunk> iterated = new ArrayList<>();
    try (TokenStream stream = client.stream(params)) {
      stream.forEachRemaining(iterated::add);
    }
    CollectingSubscriber<Chunk> subscriber = CollectingSubscriber.oneByOne();
    client.publisher(params).subscribe(subscriber);
    List<Chunk> published = subscriber.done.get(5, TimeUnit.SECONDS);

    assertThat(blocking.text()).isEqualTo("the answer to life is 42");
    assertThat(blocking.tokenIds()).hasSize(6);
    assertThat(blocking.finishReason()).isEqualTo(FinishReason.STOP);
    assertThat(blocking.usage()).isEqualTo(new Usage(1, 6, 0));
    assertThat(blocking.modelVersion()).isEqualTo("fake-v1");
    assertThat(blocking.requestId()).isEqualTo("req-1");
    assertThat(async).isEqualTo(blocking);
    for (List<Chunk> chunks : List.of(iterated, published)) {
      assertThat(text(chunks)).isEqualTo(blocking.text());
      assertThat(ids(chunks)).isEqualTo(blocking.tokenIds());
      Chunk last = chunks.get(chunks.size() - 1);
      assertThat(last.isLast()).isTrue();
      assertThat(last.finishReason()).isEqualTo(blocking.finishReason());
      assertThat(last.usage()).isEqualTo(blocking.usage());
      assertThat(chunks.subList(0, chunks.size() - 1)).noneMatch(Chunk::isLast);
      assertThat(chunks).allMatch(c -> c.requestId().equals("req-1"));
      assertThat(chunks).allMatch(c -> c.modelVersion().equals("fake-v1"));
    }
    assertThat(subscriber.protocolViolation).isFalse();
    assertThat(server.requests())
        .extracting(FakeKvantServer.ReceivedRequest::method)
        .containsExactly("Generate", "Generate", "GenerateStream", "GenerateStream");
    assertThat(server.requests())
        .allMatch(r -> r.requestIdHeader().equals("req-1"))
        .allMatch(r -> r.request().equals(params.toProto()));
  }

  @Test
  void aGeneratedRequestIdIsSentAndReported() {
    Completion c = client.generate(GenerateParams.builder().prompt("x").build());
    String header = server.requests().get(0).requestIdHeader();
    assertThat(header).matches("[0-9a-f-]{36}");
    assertThat(c.requestId()).isEqualTo(header);
    assertThat(server.requests().get(0).request().getRequestId()).isEmpty();
  }

  @Test
  void eachPublisherSubscriptionIsItsOwnCall() throws Exception {
    var publisher = client.publisher(GenerateParams.builder().prompt("a").build());
    for (int i = 0; i < 2; i++) {
      CollectingSubscriber<Chunk> s = CollectingSubscriber.oneByOne();
      publisher.subscribe(s);
      assertThat(text(s.done.get(5, TimeUnit.SECONDS))).isEqualTo("the answer to a is 42");
    }
    assertThat(server.requests()).hasSize(2);
    assertThat(server.requests().get(0).requestIdHeader())
        .isNotEqualTo(server.requests().get(1).requestIdHeader());
  }

  @Test
  void tokenizeAndListModels() {
    Tokenization t = client.tokenize("hello big world");
    assertThat(t.pieces()).containsExactly("hello", " big", " world");
    assertThat(t.tokenIds()).hasSize(3);
    assertThat(client.tokenize("", "hi", true).pieces()).containsExactly("<s>", "hi");

    List<ModelInfo> models = client.listModels();
    assertThat(models).extracting(ModelInfo::getName).containsExactly("fake-model");
    assertThat(models.get(0).getServingVersion()).isEqualTo("fake-v1");
  }

  @Test
  void anEmptyStreamIsJustTheLastChunk() {
    server.close();
    server = FakeKvantServer.builder().respond("").start();
    try (TokenStream s = server.client().stream(GenerateParams.builder().prompt("q").build())) {
      Chunk only = s.next();
      assertThat(only.text()).isEmpty();
      assertThat(only.isLast()).isTrue();
      assertThat(s.hasNext()).isFalse();
    }
  }
}
