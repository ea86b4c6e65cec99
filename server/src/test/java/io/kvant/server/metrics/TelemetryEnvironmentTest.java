package io.kvant.server.metrics;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class TelemetryEnvironmentTest {
  @Test
  void exportsNothingAndNamesTheServiceKvantByDefault() {
    Map<String, String> p =
        TelemetryEnvironment.properties(Map.of("PATH", "/bin"), Optional.empty());
    assertThat(p)
        .containsEntry("otel.service.name", "kvant")
        .containsEntry("otel.traces.exporter", "none")
        .containsEntry("otel.metrics.exporter", "none")
        .containsEntry("otel.logs.exporter", "none")
        .doesNotContainKey("path");
  }

  @Test
  void otelVariablesWinOverKvantsDefaultsAndTheOtlpFlag() {
    Map<String, String> p =
        TelemetryEnvironment.properties(
            Map.of(
                "OTEL_RESOURCE_ATTRIBUTES", "service.name=checkout,team=ml",
                "OTEL_TRACES_EXPORTER", "console",
                "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            Optional.of("http://collector:4317"));
    assertThat(p)
        .doesNotContainKey("otel.service.name")
        .containsEntry("otel.resource.attributes", "service.name=checkout,team=ml")
        .containsEntry("otel.traces.exporter", "console")
        .containsEntry("otel.metrics.exporter", "otlp")
        .containsEntry("otel.exporter.otlp.endpoint", "http://collector:4317")
        .containsEntry("otel.exporter.otlp.protocol", "http/protobuf");
  }
}
