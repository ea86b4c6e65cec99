package io.kvant.server;

import io.grpc.BindableService;
import io.grpc.InsecureServerCredentials;
import io.grpc.ServerCredentials;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.ServerServiceDefinition;
import io.grpc.TlsServerCredentials;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.protobuf.services.ProtoReflectionServiceV1;
import io.kvant.api.v1.GenerationGrpc;
import io.kvant.api.v1.ModelAdminGrpc;
import io.kvant.cuda.Backends;
import io.kvant.cuda.device.CudaOptions;
import io.kvant.engine.forward.ComputeBackend;
import io.kvant.engine.forward.Device;
import io.kvant.engine.forward.ForwardPass;
import io.kvant.engine.kv.EvictionPolicyKind;
import io.kvant.engine.kv.KvCacheConfig;
import io.kvant.engine.kv.KvCacheManager;
import io.kvant.engine.model.Model;
import io.kvant.engine.sample.SamplingParams;
import io.kvant.engine.sched.EngineLoop;
import io.kvant.engine.sched.GenerationRequest;
import io.kvant.engine.sched.RequestDelta;
import io.kvant.engine.sched.RequestFinal;
import io.kvant.engine.sched.RequestSink;
import io.kvant.engine.sched.SchedulerConfig;
import io.kvant.engine.sched.SchedulerStats;
import io.kvant.engine.sched.TransformerModel;
import io.kvant.engine.tensor.ComputePool;
import io.kvant.quant.artifact.Digests;
import io.kvant.quant.artifact.ModelOpener;
import io.kvant.quant.quantize.Quantizer;
import io.kvant.quant.quantize.Recipe;
import io.kvant.server.agent.AgentWiring;
import io.kvant.server.chat.ChatTemplates;
import io.kvant.server.config.ServerConfig;
import io.kvant.server.grpc.AdminService;
import io.kvant.server.grpc.Admission;
import io.kvant.server.grpc.AuthInterceptor;
import io.kvant.server.grpc.GenerationService;
import io.kvant.server.grpc.KvTypes;
import io.kvant.server.grpc.ParseGuard;
import io.kvant.server.grpc.RequestIds;
import io.kvant.server.grpc.TraceContextInterceptor;
import io.kvant.server.http.OpenAiHttpServer;
import io.kvant.server.metrics.EngineGauges;
import io.kvant.server.metrics.ServerMetrics;
import io.kvant.server.model.EventBus;
import io.kvant.server.model.ModelRegistry;
import io.kvant.server.model.ModelVersion;
import io.kvant.server.model.ServedModel;
import io.kvant.server.model.SwapCoordinator;
import io.kvant.server.model.VersionLoader;
import io.kvant.server.transport.GrpcListeners;
import io.opentelemetry.sdk.trace.export.SpanExporter;
import java.io.IOException;
import java.lang.System.Logger;
import java.lang.System.Logger.Level;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A running kvant sidecar: the model, the engine loop, the gRPC server and the metrics endpoint,
 * wired from one {@link ServerConfig}.
 *
 * <p>Lifecycle: {@link #start} loads the model, starts the engine loop and the gRPC server with
 * health NOT_SERVING, runs a warm-up request through the engine, then turns health SERVING. {@link
 * #shutdownGracefully} turns health NOT_SERVING, refuses new requests (UNAVAILABLE), lets in-flight
 * requests finish for up to the configured drain timeout, cancels what is left, then stops the
 * transport.
 */
public final class KvantServer implements AutoCloseable {
  private static final Logger LOG = System.getLogger("io.kvant.server");

  private final ServerConfig config;
  private final ComputePool pool;
  private final ComputeBackend backend;
  private final ModelRegistry models;
  private final EngineLoop loop;
  private final ServerMetrics metrics;
  private final EventBus events;
  private final SwapCoordinator swaps;
  private final Optional<AgentWiring> agent;
  private final HealthStatusManager health = new HealthStatusManager();
  private final AtomicBoolean accepting = new AtomicBoolean(true);
  private final AtomicBoolean stopping = new AtomicBoolean(false);
  private final CountDownLatch terminated = new CountDownLatch(1);
  private GrpcListeners listeners;
  private Optional<OpenAiHttpServer> http = Optional.empty();

  private KvantServer(
      ServerConfig config,
      ComputePool pool,
      ComputeBackend backend,
      ModelRegistry models,
      EngineLoop loop,
      ServerMetrics metrics,
      EventBus events,
      SwapCoordinator swaps,
      Optional<AgentWiring> agent) {
    this.agent = agent;
    this.config = config;
    this.pool = pool;
    this.backend = backend;
    this.models = models;
    this.loop = loop;
    this.metrics = metrics;
    this.events = events;
    this.swaps = swaps;
  }

  /**
   * Loads the model and starts serving.
   *
   * @param spans an extra span exporter (tests); empty in production
   * @throws IOException if the model cannot be loaded or the port cannot be bound
   */
  public static KvantServer start(ServerConfig config, Clock clock, Optional<SpanExporter> spans)
      throws IOException {
    return start(config, clock, spans, server -> {});
  }

  /**
   * As {@link #start(ServerConfig, Clock, Optional)}, calling {@code beforeWarmUp} once the
   * transport is listening and health says NOT_SERVING, before the warm-up request runs (tests
   * observe the start-up health state there).
   */
  static KvantServer start(
      ServerConfig config,
      Clock clock,
      Optional<SpanExporter> spans,
      java.util.function.Consumer<KvantServer> beforeWarmUp)
      throws IOException {
    ComputePool pool = new ComputePool(config.threads());
    ComputeBackend backend = null;
    try {
      backend =
          Backends.open(
              Device.parse(config.model().device()),
              CudaOptions.fromEnvironment(System.getenv()),
              pool,
              line -> LOG.log(Level.WARNING, line));
      LOG.log(Level.INFO, "compute backend: " + backend.describe());
      ComputeBackend compute = backend;
      VersionLoader loader = path -> loadVersion(path, config, compute);
      ModelVersion first = loader.load(config.model().path());
      ModelRegistry models = new ModelRegistry();
      EventBus events = new EventBus(clock);
      ServedModel[] servedRef = new ServedModel[1];
      ServedModel served =
          new ServedModel(config.model().name(), first, v -> retired(v, servedRef[0], events));
      servedRef[0] = served;
      models.add(served);
      long kvBytes = config.scheduler().kvCacheBytes();
      if (kvBytes == 0) {
        // --kv-cache-mb auto: the backend sizes it from free memory after the first version
        long weights = first.model().weights().matrixBytes();
        kvBytes =
            backend
                .kvCapacityBytes(weights)
                .orElseThrow(
                    () ->
                        new IOException(
                            "--kv-cache-mb auto: the "
                                + compute.describe()
                                + " backend cannot size the KV cache from free memory; give a"
                                + " size in MiB"));
        if (kvBytes < (64L << 20)) {
          throw new IOException(
              "--kv-cache-mb auto: only "
                  + (kvBytes >> 20)
                  + " MiB of device memory left for the KV cache after the weights ("
                  + (weights >> 20)
                  + " MiB, and as much again kept for a hot swap); give a size in MiB");
        }
        LOG.log(Level.INFO, "kv cache: " + (kvBytes >> 20) + " MiB (auto, from free memory)");
      }
      io.kvant.engine.kv.KvCacheType kvType =
          config.model().kvType().isEmpty()
              ? backend.defaultKvType()
              : KvTypes.parse(config.model().kvType());
      // The served folder's kv_calibration.safetensors, checked at start whether or not the
      // encoding uses it: a bad file fails here, never mid-serve.
      KvStorageChoice.Chosen kvChoice =
          KvStorageChoice.choose(
              config.model().kvEncoding(),
              kvType,
              backend,
              KvStorageChoice.fromFolder(config.model().path(), first.model()),
              first.model(),
              pool,
              clock);
      io.kvant.engine.kv.KvStoreFactory kvStorage = kvChoice.storage();
      io.kvant.engine.kv.KvEncoding kvEncoding = kvChoice.encoding();
      if (kvType.elementBytes() == 1) {
        LOG.log(Level.INFO, "kv cache: " + kvType + ", encoded " + kvEncoding.optionName());
      }
      KvCacheManager kv =
          new KvCacheManager(
              first.engine().kvGeometry(),
              new KvCacheConfig(
                  kvType,
                  config.scheduler().blockSize(),
                  kvBytes,
                  EvictionPolicyKind.TINY_LFU,
                  true),
              kvStorage);
      EngineLoop loop =
          new EngineLoop(
              new SchedulerConfig(
                  config.scheduler().maxBatchTokens(),
                  config.scheduler().maxSequences(),
                  config.scheduler().maxQueue()),
              kv,
              clock);
      ServerMetrics metrics =
          new ServerMetrics(
              config.metricsPort(),
              config.host(),
              config.otlpEndpoint(),
              config.interop().otelEnv(),
              spans,
              () -> gauges(loop, served));
      events.listen(
          e -> {
            double seconds = Double.NaN;
            String d = e.getAttributesMap().get("duration_ms");
            if (d != null && e.getKind() == io.kvant.api.v1.ModelEvent.Kind.SWAPPED) {
              seconds = Long.parseLong(d) / 1e3;
            }
            String reason = e.getAttributesMap().getOrDefault("reason", "");
            metrics.recordSwapEvent(e.getModel(), e.getKind().name(), reason, seconds);
            LOG.log(
                e.getKind() == io.kvant.api.v1.ModelEvent.Kind.REJECTED
                    ? Level.WARNING
                    : Level.INFO,
                "model_event kind={0} model={1} version={2}{3} {4}",
                e.getKind(),
                e.getModel(),
                e.getVersion(),
                reason.isEmpty() ? "" : " reason=" + reason,
                e.getMessage());
          });
      SwapCoordinator swaps =
          new SwapCoordinator(models, loop, events, clock, config.drainTimeout());
      Optional<AgentWiring> agent =
          config
              .bucket()
              .map(
                  uri ->
                      AgentWiring.create(
                          uri, config.agent(), served, swaps, events, pool, compute, clock));
      if (agent.isPresent()) {
        // Before anything listens: a missing bucket or a foreign staging folder fails the start.
        try {
          agent.get().prepare();
        } catch (IOException | RuntimeException e) {
          agent.get().close();
          metrics.close();
          release(first);
          throw e;
        }
      }
      KvantServer s =
          new KvantServer(config, pool, compute, models, loop, metrics, events, swaps, agent);
      loop.start();
      try {
        s.startTransport(loader);
      } catch (IOException | RuntimeException e) {
        // e.g. the port or the socket path is taken: leave nothing running behind
        agent.ifPresent(AgentWiring::close);
        loop.shutdownNow();
        metrics.close();
        release(first);
        throw e;
      }
      beforeWarmUp.accept(s);
      s.warmUp(served);
      if (agent.isPresent()) {
        // Back to the version committed before a restart (or the bucket's current one) before
        // health says SERVING: never SERVING on a version the server was not told to serve.
        agent.get().resume();
        agent.get().start();
      }
      s.markServing(served);
      return s;
    } catch (IOException | RuntimeException e) {
      if (backend != null) {
        backend.close();
      }
      pool.close();
      throw e;
    }
  }

  private static EngineGauges gauges(EngineLoop loop, ServedModel served) {
    SchedulerStats s = loop.stats();
    return new EngineGauges(
        s.waiting(),
        s.running(),
        s.kvUsage(),
        s.prefixHitRatio(),
        served.name(),
        served.serving().id(),
        s.preemptions(),
        s.steps());
  }

  /** Loads one model version from a local file or folder. */
  static ModelVersion loadVersion(Path path, ServerConfig config, ComputeBackend backend)
      throws IOException {
    String recipe = config.model().weights();
    Model model = ModelOpener.load(path, config.model().tokenizer());
    String id = versionId(path);
    if (!recipe.equals("none")) {
      try {
        model = Quantizer.quantizeAtLoad(model, Recipe.resolve(recipe));
      } catch (IllegalArgumentException e) {
        model.close();
        throw new IOException("--weights " + recipe + ": " + e.getMessage(), e);
      }
      // The same file under another recipe is another version: its KV differs.
      id = id + "+" + recipe.replaceAll("[^A-Za-z0-9._-]", "_");
    }
    ForwardPass t;
    try {
      t = backend.load(model.config(), model.weights());
    } catch (RuntimeException e) {
      model.close();
      throw new IOException(path + ": " + e.getMessage(), e);
    }
    return new ModelVersion(
        id, model, new TransformerModel(id, t, model.tokenizer()), recipe, "", id);
  }

  /** A short stable id of a local model: its name and a digest of its identity. */
  static String versionId(Path path) throws IOException {
    Path p = path.toAbsolutePath().normalize();
    String identity =
        p
            + "|"
            + Files.size(p.toFile().isDirectory() ? p.resolve("config.json") : p)
            + "|"
            + Files.getLastModifiedTime(p).toMillis();
    String name = p.getFileName().toString().replaceFirst("\\.[^.]*$", "");
    return name + "@" + Digests.sha256(identity.getBytes(StandardCharsets.UTF_8)).substring(0, 8);
  }

  /**
   * A retired version's last request ended: reports DRAINED and closes its files, unless a version
   * still held shares tensors with it (versions built by the reload agent reuse the mapped tensors
   * of their parent; those stay mapped until no one shares them).
   */
  private static void retired(ModelVersion v, ServedModel served, EventBus events) {
    events.publish(
        io.kvant.api.v1.ModelEvent.Kind.DRAINED,
        served.name(),
        v.id(),
        "last request on " + v.id() + " ended; its unique tensors are released",
        java.util.Map.of());
    // Device copies are reference-counted per tensor: releasing this version's frees only what
    // no other version holds, whatever the sharing of mapped files below decides.
    v.engine().close();
    java.util.Set<Object> mine =
        java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
    mine.addAll(io.kvant.server.grpc.AdminService.tensorsOf(v));
    for (ModelVersion h : served.versions()) {
      if (h != v
          && io.kvant.server.grpc.AdminService.tensorsOf(h).stream().anyMatch(mine::contains)) {
        return;
      }
    }
    release(v);
  }

  private static void release(ModelVersion v) {
    v.engine().close();
    try {
      v.model().close();
    } catch (IOException e) {
      LOG.log(Level.WARNING, "closing version " + v.id() + " failed: " + e.getMessage());
    }
  }

  private void startTransport(VersionLoader loader) throws IOException {
    var sec = config.security();
    ServerCredentials creds;
    if (sec.tlsCert().isPresent()) {
      var tls =
          TlsServerCredentials.newBuilder()
              .keyManager(sec.tlsCert().get().toFile(), sec.tlsKey().orElseThrow().toFile());
      if (sec.tlsClientCa().isPresent()) {
        tls.trustManager(sec.tlsClientCa().get().toFile())
            .clientAuth(TlsServerCredentials.ClientAuth.REQUIRE);
      }
      creds = tls.build();
    } else {
      creds = InsecureServerCredentials.create();
    }
    ChatTemplates templates = new ChatTemplates(config.interop().chatTemplate());
    for (ServedModel m : models.all()) {
      templates.check(m.serving().model());
    }
    Admission admission =
        new Admission(
            models,
            loop,
            metrics,
            templates,
            System::nanoTime,
            accepting::get,
            config.model().defaultMaxTokens(),
            config.scheduler().maxPromptBytes(),
            UUID.randomUUID().getMostSignificantBits());
    GenerationService generation = new GenerationService(admission, loop, Clock.systemUTC());
    AdminService admin =
        new AdminService(
            models,
            loop,
            swaps,
            loader,
            events,
            agent.map(a -> (AdminService.BucketSwapper) a),
            config.agent().swapPolicy());
    List<ServerInterceptor> genInterceptors = new ArrayList<>();
    sec.generationToken()
        .ifPresent(
            t ->
                genInterceptors.add(
                    new AuthInterceptor(Set.of(GenerationGrpc.SERVICE_NAME), Optional.of(t))));
    genInterceptors.add(new RequestIds());
    genInterceptors.add(new TraceContextInterceptor(metrics.propagators()));
    List<ServerServiceDefinition> services = new ArrayList<>();
    services.add(intercept(generation, genInterceptors));
    services.add(
        intercept(
            admin,
            List.of(
                new AuthInterceptor(Set.of(ModelAdminGrpc.SERVICE_NAME), sec.adminToken()),
                new RequestIds())));
    services.add(ParseGuard.guard(health.getHealthService().bindService()));
    services.add(ParseGuard.guard(ProtoReflectionServiceV1.newInstance().bindService()));
    health.setStatus("", ServingStatus.NOT_SERVING);
    for (ServedModel m : models.all()) {
      health.setStatus(m.name(), ServingStatus.NOT_SERVING);
    }
    int maxInbound = Math.max(4 << 20, config.scheduler().maxPromptBytes() + (64 << 10));
    listeners =
        GrpcListeners.start(config, creds, services, b -> b.maxInboundMessageSize(maxInbound));
    if (config.interop().httpPort().isPresent()) {
      try {
        http =
            Optional.of(
                new OpenAiHttpServer(
                    config.host(),
                    config.interop().httpPort().get(),
                    admission,
                    metrics.propagators(),
                    sec.generationToken(),
                    config.scheduler().maxPromptBytes() + (64 << 10),
                    sec.tlsCert(),
                    sec.tlsKey(),
                    sec.tlsClientCa(),
                    Clock.systemUTC()));
      } catch (IOException e) {
        listeners.shutdownNow();
        listeners.release();
        throw e;
      }
    }
  }

  private static ServerServiceDefinition intercept(
      BindableService service, List<ServerInterceptor> interceptors) {
    // ServerInterceptors runs the last one first; keep the list in call order.
    List<ServerInterceptor> reversed = new ArrayList<>(interceptors);
    java.util.Collections.reverse(reversed);
    return ServerInterceptors.intercept(ParseGuard.guard(service.bindService()), reversed);
  }

  /** Runs one short request through the whole engine path (health is turned SERVING after). */
  private void warmUp(ServedModel served) throws IOException {
    ModelVersion v = served.serving();
    int bos = v.model().tokenizer().bos();
    int[] prompt = {bos >= 0 ? bos : 0};
    CountDownLatch done = new CountDownLatch(1);
    String[] error = new String[1];
    loop.submit(
        new GenerationRequest(
            "warmup-" + UUID.randomUUID(),
            v.engine(),
            prompt,
            2,
            SamplingParams.GREEDY,
            List.of(),
            0,
            0,
            null,
            new RequestSink() {
              @Override
              public void onDelta(RequestDelta delta) {}

              @Override
              public void onFinish(RequestFinal result) {
                if (result.finishReason() == io.kvant.engine.generate.FinishReason.ERROR) {
                  error[0] = result.error();
                }
                done.countDown();
              }
            }));
    try {
      if (!done.await(5, TimeUnit.MINUTES) || error[0] != null) {
        throw new IOException("warm-up request failed: " + error[0]);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted during warm-up");
    }
  }

  private void markServing(ServedModel served) {
    health.setStatus("", ServingStatus.SERVING);
    for (ServedModel m : models.all()) {
      health.setStatus(m.name(), ServingStatus.SERVING);
    }
    LOG.log(
        Level.INFO, "model={0} version={1} warm and serving", served.name(), served.serving().id());
  }

  /** The bound gRPC TCP port, or -1 when serving on a Unix socket only. */
  public int port() {
    return listeners.port();
  }

  /** The Unix socket gRPC is served on, when configured. */
  public Optional<Path> unixSocket() {
    return listeners.unixSocket();
  }

  /** The bound port of the OpenAI-compatible HTTP API, or -1 when it is off. */
  public int httpPort() {
    return http.map(OpenAiHttpServer::port).orElse(-1);
  }

  /** The Prometheus port, or -1 when off. */
  public int metricsPort() {
    return metrics.prometheusPort();
  }

  /** Where this server's forward passes run. */
  public ComputeBackend backend() {
    return backend;
  }

  public ModelRegistry models() {
    return models;
  }

  public EngineLoop engineLoop() {
    return loop;
  }

  public EventBus events() {
    return events;
  }

  public SwapCoordinator swaps() {
    return swaps;
  }

  /** The reload agent, when a bucket is configured. */
  public Optional<io.kvant.reload.ReloadAgent> agent() {
    return agent.map(AgentWiring::agent);
  }

  /**
   * Health NOT_SERVING, new requests refused, in-flight requests drained for up to the configured
   * timeout (then cancelled), transport stopped. Idempotent; returns when everything has stopped.
   */
  public void shutdownGracefully() {
    stop(config.drainTimeout());
  }

  private void stop(Duration drain) {
    if (!stopping.compareAndSet(false, true)) {
      awaitTermination();
      return;
    }
    accepting.set(false);
    agent.ifPresent(AgentWiring::close);
    LOG.log(Level.INFO, "shutting down: draining for up to {0}", drain);
    health.enterTerminalState();
    loop.shutdown();
    try {
      if (!loop.awaitTermination(drain)) {
        LOG.log(Level.WARNING, "drain timeout passed; cancelling the requests still running");
        loop.shutdownNow();
        loop.awaitTermination(Duration.ofSeconds(10));
      }
      listeners.shutdown();
      http.ifPresent(OpenAiHttpServer::close);
      if (!listeners.awaitTermination(5, TimeUnit.SECONDS)) {
        listeners.shutdownNow();
        listeners.awaitTermination(5, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      listeners.shutdownNow();
    } finally {
      listeners.release();
      metrics.close();
      for (ServedModel m : models.all()) {
        for (ModelVersion v : m.versions()) {
          release(v);
        }
      }
      backend.close();
      pool.close();
      terminated.countDown();
      LOG.log(Level.INFO, "stopped");
    }
  }

  /**
   * Stops at once, as a crash would: calls in flight fail (the client sees UNAVAILABLE or
   * CANCELLED), nothing drains. For failure tests and last-resort exits.
   */
  public void kill() {
    accepting.set(false);
    listeners.shutdownNow();
    http.ifPresent(OpenAiHttpServer::close);
    loop.shutdownNow();
    stop(Duration.ZERO);
  }

  /** Blocks until {@link #shutdownGracefully} has finished. */
  public void awaitTermination() {
    try {
      terminated.await();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  @Override
  public void close() {
    shutdownGracefully();
  }
}
