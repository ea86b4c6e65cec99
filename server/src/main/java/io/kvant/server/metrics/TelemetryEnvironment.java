package io.kvant.server.metrics;

import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * Turns the {@code OTEL_*} environment variables (handed in as a map, never read from the process
 * here) into the properties of the OpenTelemetry autoconfiguration module, with kvant's defaults
 * where a variable is absent.
 *
 * <p>Defaults differ from the module's in one respect: a sidecar exports nothing unless asked
 * ({@code none} for traces, metrics and logs instead of the module's {@code otlp}, which would
 * retry a collector on localhost forever). {@code --otlp-endpoint} turns on OTLP/gRPC export of
 * traces and metrics (every 15 s), as before. The service name defaults to {@code kvant}.
 */
public final class TelemetryEnvironment {
  private TelemetryEnvironment() {}

  /**
   * @param env environment variables; only {@code OTEL_*} ones are used
   * @param otlpEndpoint kvant's {@code --otlp-endpoint}, if set
   * @return autoconfiguration properties ({@code otel.service.name}, {@code otel.traces.exporter},
   *     ...)
   */
  public static Map<String, String> properties(
      Map<String, String> env, Optional<String> otlpEndpoint) {
    Map<String, String> p = new HashMap<>();
    env.forEach(
        (k, v) -> {
          if (k.startsWith("OTEL_") && v != null) {
            p.put(k.toLowerCase(Locale.ROOT).replace('_', '.'), v);
          }
        });
    boolean resourceNamesService =
        p.getOrDefault("otel.resource.attributes", "").contains("service.name=");
    if (!p.containsKey("otel.service.name") && !resourceNamesService) {
      p.put("otel.service.name", "kvant");
    }
    String exporter = otlpEndpoint.isPresent() ? "otlp" : "none";
    p.putIfAbsent("otel.traces.exporter", exporter);
    p.putIfAbsent("otel.metrics.exporter", exporter);
    p.putIfAbsent("otel.logs.exporter", "none");
    if (otlpEndpoint.isPresent()) {
      p.putIfAbsent("otel.exporter.otlp.endpoint", otlpEndpoint.get());
      p.putIfAbsent("otel.exporter.otlp.protocol", "grpc");
      p.putIfAbsent("otel.metric.export.interval", "15000");
    }
    return p;
  }
}
