package io.kvant.charts;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * values.schema.json turns a bad value into an install-time error that names the value and says
 * what is allowed, instead of a pod that crash-loops on ConfigLoader's message (or, worse, a
 * manifest the API server accepts with the wrong meaning).
 */
class SchemaTest {
  static Stream<Arguments> badValues() {
    return Stream.of(
        Arguments.of("server.port", -1, "at '/server/port': minimum: got -1, want 1"),
        Arguments.of("server.port", 70000, "at '/server/port': maximum: got 70,000, want 65,535"),
        Arguments.of("metrics.port", 0, "at '/metrics/port': minimum: got 0, want 1"),
        Arguments.of(
            "model.kv", "fp16", "at '/model/kv': value must be one of 'f32', 'int8', 'fp8'"),
        Arguments.of("model.weights", "int3", "at '/model/weights': value must be one of 'none'"),
        // --set key=null deletes the key: the model path is then missing.
        Arguments.of("model.path", "null", "at '/model': missing property 'path'"),
        Arguments.of(
            "model.path",
            "models/x.gguf",
            "at '/model/path': 'models/x.gguf' does not match pattern '^/'"),
        Arguments.of("model.name", "has space", "at '/model/name'"),
        Arguments.of(
            "reloadAgent.bucket",
            "https://bucket",
            "at '/reloadAgent/bucket': 'https://bucket' does not match"),
        Arguments.of("scheduler.kvCacheMb", 0, "at '/scheduler/kvCacheMb': minimum: got 0, want 1"),
        Arguments.of(
            "server.drainTimeoutSeconds",
            -5,
            "at '/server/drainTimeoutSeconds': minimum: got -5, want 0"),
        Arguments.of(
            "probes.startupSeconds", 5, "at '/probes/startupSeconds': minimum: got 5, want 30"),
        Arguments.of("resources.memory.override", "lots", "at '/resources/memory/override'"),
        Arguments.of("resources.cpu", 0, "at '/resources/cpu': exclusiveMinimum: got 0, want 0"),
        Arguments.of("tls.enabled", true, "at '/tls/secretName': minLength: got 0, want 1"),
        Arguments.of("model.kvv", "int8", "at '/model': additional properties 'kvv' not allowed"),
        Arguments.of("replicas", 3, "additional properties 'replicas' not allowed"));
  }

  @ParameterizedTest(name = "{0}={1}")
  @MethodSource("badValues")
  void rejectsWithAMessageNamingTheValue(String key, Object value, String message) {
    assertThatThrownBy(() -> ChartFixture.render(List.of(), Map.of(key, value)))
        .hasMessageContaining("values don't meet the specifications of the schema")
        .hasMessageContaining(message)
        // One bad value, one complaint: the defaults themselves are valid.
        .satisfies(
            e -> assertThat(e.getMessage().lines().filter(l -> l.startsWith("- at "))).hasSize(1));
  }

  static Stream<Arguments> goodValues() {
    return Stream.of(
        Arguments.of("reloadAgent.bucket", "file:///var/lib/kvant/bucket"),
        Arguments.of("model.kv", "fp8"),
        Arguments.of("resources.memory.override", "12Gi"),
        Arguments.of("podDisruptionBudget.maxUnavailable", "25%"));
  }

  @ParameterizedTest(name = "{0}={1}")
  @MethodSource("goodValues")
  void acceptsValidValues(String key, Object value) {
    assertThat(ChartFixture.render(List.of(), Map.of(key, value)).kinds()).contains("Deployment");
  }

  @org.junit.jupiter.api.Test
  void autoscalingWithoutAnyTargetFailsWithTheFix() {
    assertThatThrownBy(
            () ->
                ChartFixture.render(
                    List.of(),
                    Map.of(
                        "autoscaling.enabled",
                        true,
                        "autoscaling.targetCPUUtilizationPercentage",
                        0)))
        .hasMessageContaining("autoscaling.enabled needs a target");
  }
}
