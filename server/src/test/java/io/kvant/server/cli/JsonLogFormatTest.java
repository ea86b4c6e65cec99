package io.kvant.server.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import org.junit.jupiter.api.Test;

class JsonLogFormatTest {
  @Test
  void oneJsonObjectPerLineWithTheRequestIdAsAField() throws Exception {
    LogRecord r = new LogRecord(Level.INFO, "request_id={0} finish=stop \"quoted\"\nnext");
    r.setParameters(new Object[] {"abc-1"});
    r.setLoggerName("io.kvant.server.grpc.Generation");
    r.setThrown(new IllegalStateException("boom"));
    String line = new JsonLogFormat().format(r);
    assertThat(line).endsWith(System.lineSeparator());
    assertThat(line.strip()).doesNotContain("\n");
    JsonNode o = new ObjectMapper().readTree(line);
    assertThat(o.path("level").asText()).isEqualTo("INFO");
    assertThat(o.path("logger").asText()).isEqualTo("io.kvant.server.grpc.Generation");
    assertThat(o.path("message").asText())
        .isEqualTo("request_id=abc-1 finish=stop \"quoted\"\nnext");
    assertThat(o.path("request_id").asText()).isEqualTo("abc-1");
    assertThat(o.path("stack_trace").asText()).contains("IllegalStateException: boom");
    assertThat(o.path("time").asText()).endsWith("Z");
  }
}
