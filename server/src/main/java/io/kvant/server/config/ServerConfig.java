package io.kvant.server.config;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;

/**
 * Every setting of {@code kvant serve}, built once at start-up from the YAML file and the flags
 * ({@link ConfigLoader}) and passed down through constructors.
 *
 * @param host address to listen on
 * @param port gRPC port
 * @param model which model to serve and how
 * @param scheduler batching and KV cache limits
 * @param security tokens and TLS
 * @param metricsPort Prometheus scrape port; 0 disables the endpoint
 * @param otlpEndpoint OTLP/gRPC endpoint for metrics and traces, empty when not configured
 * @param drainTimeout how long in-flight requests may finish after SIGTERM
 * @param threads compute threads for the engine
 * @param bucket artifact bucket watched by the reload agent, empty when none
 * @param agent reload agent settings (used when {@code bucket} is set)
 * @param interop the OpenAI-compatible HTTP API, chat templates, telemetry environment, log format
 * @param listen which transports gRPC listens on: TCP ({@code host}:{@code port}) and/or a Unix
 *     domain socket
 */
public record ServerConfig(
    String host,
    int port,
    ModelSettings model,
    SchedulerSettings scheduler,
    SecuritySettings security,
    int metricsPort,
    Optional<String> otlpEndpoint,
    Duration drainTimeout,
    int threads,
    Optional<String> bucket,
    AgentConfig agent,
    InteropSettings interop,
    Listen listen) {

  /** A config on TCP only. */
  public ServerConfig(
      String host,
      int port,
      ModelSettings model,
      SchedulerSettings scheduler,
      SecuritySettings security,
      int metricsPort,
      Optional<String> otlpEndpoint,
      Duration drainTimeout,
      int threads,
      Optional<String> bucket,
      AgentConfig agent,
      InteropSettings interop) {
    this(
        host,
        port,
        model,
        scheduler,
        security,
        metricsPort,
        otlpEndpoint,
        drainTimeout,
        threads,
        bucket,
        agent,
        interop,
        Listen.TCP);
  }

  /** A config with the default interop settings (no HTTP API, no chat template override). */
  public ServerConfig(
      String host,
      int port,
      ModelSettings model,
      SchedulerSettings scheduler,
      SecuritySettings security,
      int metricsPort,
      Optional<String> otlpEndpoint,
      Duration drainTimeout,
      int threads,
      Optional<String> bucket,
      AgentConfig agent) {
    this(
        host,
        port,
        model,
        scheduler,
        security,
        metricsPort,
        otlpEndpoint,
        drainTimeout,
        threads,
        bucket,
        agent,
        InteropSettings.defaults());
  }

  /** This config listening on {@code listen} instead. */
  public ServerConfig withListen(Listen listen) {
    return new ServerConfig(
        host,
        port,
        model,
        scheduler,
        security,
        metricsPort,
        otlpEndpoint,
        drainTimeout,
        threads,
        bucket,
        agent,
        interop,
        listen);
  }

  /**
   * Where gRPC is served: TCP on {@code host:port}, a Unix domain socket (the sidecar transport: an
   * application container in the same pod connects to a file on a shared volume), or both.
   *
   * @param tcp whether to listen on {@code host:port}
   * @param unixSocket the socket file to create, empty for none
   */
  public record Listen(boolean tcp, Optional<Path> unixSocket) {
    /** TCP only, the default. */
    public static final Listen TCP = new Listen(true, Optional.empty());

    public Listen {
      if (!tcp && unixSocket.isEmpty()) {
        throw new IllegalArgumentException("listen: needs TCP, a Unix socket, or both");
      }
    }
  }

  /** A config with the default agent settings. */
  public ServerConfig(
      String host,
      int port,
      ModelSettings model,
      SchedulerSettings scheduler,
      SecuritySettings security,
      int metricsPort,
      Optional<String> otlpEndpoint,
      Duration drainTimeout,
      int threads,
      Optional<String> bucket) {
    this(
        host,
        port,
        model,
        scheduler,
        security,
        metricsPort,
        otlpEndpoint,
        drainTimeout,
        threads,
        bucket,
        AgentConfig.defaults());
  }

  /**
   * @param path model file or folder (GGUF, llama2.c .bin, safetensors folder)
   * @param name name clients use; defaults to the file name without extension
   * @param weights quantization recipe applied at load ("none" keeps the file's types)
   * @param kvType KV cache storage: f32, f16 (GPU), int8 or fp8; empty for the backend's default
   * @param tokenizer tokenizer file for formats that don't embed one (llama2.c), empty otherwise
   * @param defaultMaxTokens max_tokens used when a request leaves it 0
   * @param device where forward passes run: cpu, cuda or auto
   * @param kvEncoding how INT8/FP8 KV is encoded ({@code KvEncoding}'s option name); empty for the
   *     backend's default
   */
  public record ModelSettings(
      Path path,
      String name,
      String weights,
      String kvType,
      Optional<Path> tokenizer,
      int defaultMaxTokens,
      String device,
      String kvEncoding) {
    /** Settings with the backend's default KV encoding. */
    public ModelSettings(
        Path path,
        String name,
        String weights,
        String kvType,
        Optional<Path> tokenizer,
        int defaultMaxTokens,
        String device) {
      this(path, name, weights, kvType, tokenizer, defaultMaxTokens, device, "");
    }

    /** Settings on the CPU. */
    public ModelSettings(
        Path path,
        String name,
        String weights,
        String kvType,
        Optional<Path> tokenizer,
        int defaultMaxTokens) {
      this(path, name, weights, kvType, tokenizer, defaultMaxTokens, "cpu");
    }
  }

  /**
   * @param maxQueue requests waiting for admission before RESOURCE_EXHAUSTED
   * @param maxBatchTokens token budget of one engine step
   * @param maxSequences requests running at once
   * @param kvCacheBytes memory budget of the KV cache; 0 for auto (the backend sizes it from free
   *     memory, see {@code ComputeBackend.kvCapacityBytes})
   * @param blockSize tokens per KV block
   * @param maxPromptBytes largest accepted prompt text, bytes of UTF-8
   */
  public record SchedulerSettings(
      int maxQueue,
      int maxBatchTokens,
      int maxSequences,
      long kvCacheBytes,
      int blockSize,
      int maxPromptBytes) {}

  /**
   * @param adminToken bearer token for ModelAdmin (required for admin calls to succeed)
   * @param generationToken bearer token for Generation, empty when Generation is open
   * @param tlsCert server certificate chain (PEM), empty for plaintext
   * @param tlsKey server private key (PEM, PKCS#8)
   * @param tlsClientCa CA that client certificates must chain to (enables mutual TLS)
   */
  public record SecuritySettings(
      Optional<String> adminToken,
      Optional<String> generationToken,
      Optional<Path> tlsCert,
      Optional<Path> tlsKey,
      Optional<Path> tlsClientCa) {}

  /**
   * How kvant speaks the ecosystem's protocols.
   *
   * @param httpPort port of the OpenAI-compatible HTTP API; empty when it is off (the default), 0
   *     for any free port
   * @param chatTemplate a Jinja chat template file that replaces (or supplies) the model's own
   * @param otelEnv the {@code OTEL_*} environment variables, read by the OpenTelemetry
   *     autoconfiguration (service name, exporters, propagators)
   * @param logFormat {@code text} (one line per record) or {@code json} (one JSON object per line)
   */
  public record InteropSettings(
      Optional<Integer> httpPort,
      Optional<Path> chatTemplate,
      java.util.Map<String, String> otelEnv,
      String logFormat) {
    public InteropSettings {
      otelEnv = java.util.Map.copyOf(otelEnv);
    }

    /** HTTP off, the model's own chat template, no OTEL_* settings, text logs. */
    public static InteropSettings defaults() {
      return new InteropSettings(Optional.empty(), Optional.empty(), java.util.Map.of(), "text");
    }
  }
}
