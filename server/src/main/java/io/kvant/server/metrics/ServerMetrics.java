package io.kvant.server.metrics;

import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.api.metrics.DoubleHistogram;
import io.opentelemetry.api.metrics.LongCounter;
import io.opentelemetry.api.metrics.LongHistogram;
import io.opentelemetry.api.metrics.Meter;
import io.opentelemetry.api.trace.Tracer;
import io.opentelemetry.context.propagation.ContextPropagators;
import io.opentelemetry.exporter.prometheus.PrometheusHttpServer;
import io.opentelemetry.sdk.OpenTelemetrySdk;
import io.opentelemetry.sdk.autoconfigure.AutoConfiguredOpenTelemetrySdk;
import io.opentelemetry.sdk.metrics.Aggregation;
import io.opentelemetry.sdk.metrics.InstrumentSelector;
import io.opentelemetry.sdk.metrics.InstrumentType;
import io.opentelemetry.sdk.metrics.View;
import io.opentelemetry.sdk.trace.export.SimpleSpanProcessor;
import io.opentelemetry.sdk.trace.export.SpanExporter;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Supplier;

/**
 * kvant's metrics and traces, on the OpenTelemetry SDK.
 *
 * <p>Names follow the GenAI semantic conventions where they exist ({@code
 * gen_ai.server.time_to_first_token}, {@code gen_ai.server.time_per_output_token}, {@code
 * gen_ai.server.request.duration}, {@code gen_ai.client.token.usage}); kvant's own live under
 * {@code kvant.*}. A Prometheus scrape endpoint serves them on its own port; exporters, the service
 * name and propagators come from the {@code OTEL_*} environment through the SDK's autoconfiguration
 * module ({@link TelemetryEnvironment}); {@code --otlp-endpoint} is a shorthand for OTLP export.
 * Gauges read a {@link EngineGauges} snapshot on each collection, so the engine loop never does
 * metric work for them.
 */
public final class ServerMetrics implements AutoCloseable {
  static final AttributeKey<String> MODEL = AttributeKey.stringKey("gen_ai.request.model");
  static final AttributeKey<String> OPERATION = AttributeKey.stringKey("gen_ai.operation.name");
  static final AttributeKey<String> TOKEN_TYPE = AttributeKey.stringKey("gen_ai.token.type");
  static final AttributeKey<String> FINISH =
      AttributeKey.stringKey("gen_ai.response.finish_reasons");
  static final AttributeKey<String> VERSION = AttributeKey.stringKey("kvant.model.version");
  static final AttributeKey<String> EVENT = AttributeKey.stringKey("kvant.swap.event");
  static final AttributeKey<String> REASON = AttributeKey.stringKey("kvant.swap.reason");

  /** Latency buckets (seconds) fine enough for per-token times of a small model. */
  private static final List<Double> SECONDS_BUCKETS =
      List.of(
          0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5,
          5.0, 7.5, 10.0, 30.0, 60.0);

  private static final List<Double> TOKEN_BUCKETS =
      List.of(1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0);

  private final OpenTelemetrySdk sdk;
  private final Optional<PrometheusHttpServer> prometheus;
  private final int prometheusPort;
  private final Tracer tracer;
  private final DoubleHistogram ttft;
  private final DoubleHistogram tpot;
  private final DoubleHistogram duration;
  private final LongHistogram tokenUsage;
  private final LongCounter swapEvents;
  private final DoubleHistogram swapDuration;
  private final LongCounter requests;

  /**
   * @param prometheusPort port of the scrape endpoint; 0 for none
   * @param host address the endpoint binds to
   * @param otlpEndpoint OTLP/gRPC collector, if any
   * @param extraSpanExporter an additional span exporter (tests use an in-memory one), if any
   * @param gauges snapshot of the engine's state, read at each collection
   */
  public ServerMetrics(
      int prometheusPort,
      String host,
      Optional<String> otlpEndpoint,
      Optional<SpanExporter> extraSpanExporter,
      Supplier<EngineGauges> gauges) {
    this(prometheusPort, host, otlpEndpoint, Map.of(), extraSpanExporter, gauges);
  }

  /**
   * As above, with the {@code OTEL_*} environment: the OpenTelemetry SDK is built by its
   * autoconfiguration module from these variables (see {@link TelemetryEnvironment}), plus kvant's
   * Prometheus endpoint, histogram buckets and the extra exporter.
   *
   * @param otelEnv {@code OTEL_*} variables, e.g. {@code OTEL_SERVICE_NAME}, {@code
   *     OTEL_TRACES_EXPORTER}, {@code OTEL_EXPORTER_OTLP_ENDPOINT}
   */
  public ServerMetrics(
      int prometheusPort,
      String host,
      Optional<String> otlpEndpoint,
      Map<String, String> otelEnv,
      Optional<SpanExporter> extraSpanExporter,
      Supplier<EngineGauges> gauges) {
    PrometheusHttpServer prom =
        prometheusPort > 0
            ? PrometheusHttpServer.builder().setHost(host).setPort(prometheusPort).build()
            : null;
    Map<String, String> properties = TelemetryEnvironment.properties(otelEnv, otlpEndpoint);
    AutoConfiguredOpenTelemetrySdk auto =
        AutoConfiguredOpenTelemetrySdk.builder()
            .disableShutdownHook()
            // Customizer output wins over the library's own reads of the process environment, so
            // every key kvant sets comes from the injected map (or kvant's default).
            .addPropertiesCustomizer(c -> properties)
            .addMeterProviderCustomizer(
                (meters, c) -> {
                  meters.registerView(
                      InstrumentSelector.builder()
                          .setType(InstrumentType.HISTOGRAM)
                          .setUnit("s")
                          .build(),
                      View.builder()
                          .setAggregation(Aggregation.explicitBucketHistogram(SECONDS_BUCKETS))
                          .build());
                  meters.registerView(
                      InstrumentSelector.builder()
                          .setType(InstrumentType.HISTOGRAM)
                          .setUnit("{token}")
                          .build(),
                      View.builder()
                          .setAggregation(Aggregation.explicitBucketHistogram(TOKEN_BUCKETS))
                          .build());
                  if (prom != null) {
                    meters.registerMetricReader(prom);
                  }
                  return meters;
                })
            .addTracerProviderCustomizer(
                (traces, c) -> {
                  extraSpanExporter.ifPresent(
                      e -> traces.addSpanProcessor(SimpleSpanProcessor.create(e)));
                  return traces;
                })
            .build();
    this.sdk = auto.getOpenTelemetrySdk();
    this.prometheus = Optional.ofNullable(prom);
    this.prometheusPort = prom == null ? -1 : prometheusPort;
    this.tracer = sdk.getTracer("io.kvant.server");
    Meter meter = sdk.getMeter("io.kvant.server");
    ttft =
        meter
            .histogramBuilder("gen_ai.server.time_to_first_token")
            .setUnit("s")
            .setDescription("Time from request arrival to the first generated token")
            .build();
    tpot =
        meter
            .histogramBuilder("gen_ai.server.time_per_output_token")
            .setUnit("s")
            .setDescription("Time per output token after the first")
            .build();
    duration =
        meter
            .histogramBuilder("gen_ai.server.request.duration")
            .setUnit("s")
            .setDescription("Time from request arrival to its last token")
            .build();
    tokenUsage =
        meter
            .histogramBuilder("gen_ai.client.token.usage")
            .ofLongs()
            .setUnit("{token}")
            .setDescription("Tokens per request, by gen_ai.token.type (input, output)")
            .build();
    requests =
        meter
            .counterBuilder("kvant.requests")
            .setDescription("Finished requests by finish reason")
            .build();
    meter
        .counterBuilder("kvant.scheduler.preemptions")
        .setDescription("Requests preempted (blocks freed, recomputed later)")
        .buildWithCallback(m -> m.record(gauges.get().preemptions()));
    meter
        .counterBuilder("kvant.scheduler.steps")
        .setDescription("Engine steps (batched forward passes) run")
        .buildWithCallback(m -> m.record(gauges.get().steps()));
    swapEvents =
        meter
            .counterBuilder("kvant.swap.events")
            .setDescription("Reload and swap events by kind")
            .build();
    swapDuration =
        meter
            .histogramBuilder("kvant.swap.duration")
            .setUnit("s")
            .setDescription("Time a swap took, from request to serving")
            .build();
    meter
        .gaugeBuilder("kvant.scheduler.queue.size")
        .ofLongs()
        .setDescription("Requests waiting for admission")
        .buildWithCallback(m -> m.record(gauges.get().queued()));
    meter
        .gaugeBuilder("kvant.scheduler.running")
        .ofLongs()
        .setDescription("Requests in the running batch")
        .buildWithCallback(m -> m.record(gauges.get().running()));
    meter
        .gaugeBuilder("kvant.kv_cache.usage")
        .setDescription("Fraction of KV cache blocks in use")
        .buildWithCallback(m -> m.record(gauges.get().kvUsage()));
    meter
        .gaugeBuilder("kvant.prefix_cache.hit_ratio")
        .setDescription("Prefix cache hits over lookups since start")
        .buildWithCallback(m -> m.record(gauges.get().prefixHitRatio()));
    meter
        .gaugeBuilder("kvant.model.version")
        .ofLongs()
        .setDescription("1 for the serving version of each model (the version is an attribute)")
        .buildWithCallback(
            m -> {
              EngineGauges g = gauges.get();
              m.record(1, Attributes.of(MODEL, g.model(), VERSION, g.servingVersion()));
            });
  }

  /**
   * The propagators configured by {@code OTEL_PROPAGATORS} (W3C trace context and baggage by
   * default): how a caller's trace context is read from request headers.
   */
  public ContextPropagators propagators() {
    return sdk.getPropagators();
  }

  /** The tracer for per-request spans. */
  public Tracer tracer() {
    return tracer;
  }

  /** The port of the Prometheus endpoint, or -1 when it is off. */
  public int prometheusPort() {
    return prometheusPort;
  }

  /** Records one finished completion request (operation {@code text_completion}). */
  public void recordRequest(
      String model,
      String finishReason,
      double ttftSeconds,
      double tpotSeconds,
      double durationSeconds,
      long promptTokens,
      long completionTokens) {
    recordRequest(
        model,
        "text_completion",
        finishReason,
        ttftSeconds,
        tpotSeconds,
        durationSeconds,
        promptTokens,
        completionTokens);
  }

  /**
   * Records one finished request. Times in seconds; ttft/tpot are skipped when NaN.
   *
   * @param operation {@code gen_ai.operation.name}: {@code text_completion} or {@code chat}
   */
  public void recordRequest(
      String model,
      String operation,
      String finishReason,
      double ttftSeconds,
      double tpotSeconds,
      double durationSeconds,
      long promptTokens,
      long completionTokens) {
    Attributes base = Attributes.of(MODEL, model, OPERATION, operation);
    if (!Double.isNaN(ttftSeconds)) {
      ttft.record(ttftSeconds, base);
    }
    if (!Double.isNaN(tpotSeconds)) {
      tpot.record(tpotSeconds, base);
    }
    duration.record(durationSeconds, base.toBuilder().put(FINISH, finishReason).build());
    tokenUsage.record(promptTokens, base.toBuilder().put(TOKEN_TYPE, "input").build());
    tokenUsage.record(completionTokens, base.toBuilder().put(TOKEN_TYPE, "output").build());
    requests.add(1, base.toBuilder().put(FINISH, finishReason).build());
  }

  /** Counts a reload or swap event; {@code seconds} is recorded for completed swaps (else NaN). */
  public void recordSwapEvent(String model, String kind, String reason, double seconds) {
    swapEvents.add(
        1,
        reason.isEmpty()
            ? Attributes.of(MODEL, model, EVENT, kind)
            : Attributes.of(MODEL, model, EVENT, kind, REASON, reason));
    if (!Double.isNaN(seconds)) {
      swapDuration.record(seconds, Attributes.of(MODEL, model));
    }
  }

  @Override
  public void close() {
    prometheus.ifPresent(PrometheusHttpServer::close);
    sdk.close();
  }
}
