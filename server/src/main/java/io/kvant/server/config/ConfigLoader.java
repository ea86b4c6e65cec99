package io.kvant.server.config;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.kvant.reload.SwapMode;
import io.kvant.server.config.ServerConfig.ModelSettings;
import io.kvant.server.config.ServerConfig.SchedulerSettings;
import io.kvant.server.config.ServerConfig.SecuritySettings;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Builds a {@link ServerConfig} from {@code --config FILE} (YAML) and command-line flags; a flag
 * wins over the file. Every value is validated here, at start-up, and a bad one fails with a
 * message naming the setting (as {@code file: key} or {@code --flag}) and what is allowed.
 *
 * <p>The environment is passed in (for {@code *_token_env} settings, the {@code OTEL_*} telemetry
 * settings and {@code KVANT_HOME}, where the bundled model lives) so that tests control it.
 */
public final class ConfigLoader {
  /** File name of the model that ships in {@code models/}. */
  public static final String BUNDLED_MODEL = "models/kvant-kjv-7m.gguf";

  /** Flag name (without dashes) to its dotted YAML key. */
  private static final Map<String, String> FLAGS =
      Map.ofEntries(
          Map.entry("host", "host"),
          Map.entry("port", "port"),
          Map.entry("listen", "listen"),
          Map.entry("threads", "threads"),
          Map.entry("drain-timeout", "drain_timeout_seconds"),
          Map.entry("bucket", "bucket"),
          Map.entry("metrics-port", "metrics.port"),
          Map.entry("otlp-endpoint", "metrics.otlp_endpoint"),
          Map.entry("model", "model.path"),
          Map.entry("name", "model.name"),
          Map.entry("weights", "model.weights"),
          Map.entry("kv", "model.kv"),
          Map.entry("kv-encoding", "model.kv_encoding"),
          Map.entry("device", "model.device"),
          Map.entry("tokenizer", "model.tokenizer"),
          Map.entry("chat-template", "model.chat_template"),
          Map.entry("http-port", "http.port"),
          Map.entry("log-format", "log.format"),
          Map.entry("default-max-tokens", "model.default_max_tokens"),
          Map.entry("max-queue", "scheduler.max_queue"),
          Map.entry("max-batch-tokens", "scheduler.max_batch_tokens"),
          Map.entry("max-seqs", "scheduler.max_sequences"),
          Map.entry("kv-cache-mb", "scheduler.kv_cache_mb"),
          Map.entry("block-size", "scheduler.block_size"),
          Map.entry("max-prompt-bytes", "scheduler.max_prompt_bytes"),
          Map.entry("admin-token-file", "security.admin_token_file"),
          Map.entry("admin-token-env", "security.admin_token_env"),
          Map.entry("generation-token-file", "security.generation_token_file"),
          Map.entry("generation-token-env", "security.generation_token_env"),
          Map.entry("tls-cert", "security.tls_cert"),
          Map.entry("tls-key", "security.tls_key"),
          Map.entry("tls-client-ca", "security.tls_client_ca"),
          Map.entry("agent-model", "agent.model"),
          Map.entry("agent-channel", "agent.channel"),
          Map.entry("agent-poll-seconds", "agent.poll_interval_seconds"),
          Map.entry("agent-staging-dir", "agent.staging_dir"),
          Map.entry("agent-qbom-dir", "agent.qbom_dir"),
          Map.entry("agent-watch-seconds", "agent.watch_window_seconds"),
          Map.entry("agent-auto-swap", "agent.auto_swap"),
          Map.entry("swap-policy", "agent.swap_policy"),
          Map.entry("gate-min-top1", "agent.gate.min_top1"),
          Map.entry("gate-max-kl", "agent.gate.max_kl"),
          Map.entry("rollback-error-rate", "agent.rollback.error_rate"),
          Map.entry("rollback-min-requests", "agent.rollback.min_requests"),
          Map.entry("s3-endpoint", "agent.s3.endpoint"),
          Map.entry("s3-region", "agent.s3.region"),
          Map.entry("s3-path-style", "agent.s3.path_style"),
          Map.entry("s3-access-key-env", "agent.s3.access_key_env"),
          Map.entry("s3-secret-key-env", "agent.s3.secret_key_env"));

  private static final Set<String> KV_TYPES = Set.of("f32", "f16", "int8", "fp8");

  private final Map<String, String> env;

  public ConfigLoader(Map<String, String> env) {
    this.env = Map.copyOf(env);
  }

  /** {@code scheduler.kv_cache_mb} in bytes; 0 stands for {@code auto} (sized by the backend). */
  private static long kvCacheBytes(Settings s, String device) throws ConfigException {
    Optional<String> v = s.optional("scheduler.kv_cache_mb");
    if (v.isPresent() && v.get().strip().equals("auto")) {
      if (device.equals("cpu")) {
        throw new ConfigException(
            s.where("scheduler.kv_cache_mb")
                + ": auto sizes the KV cache from free device memory and needs --device cuda or"
                + " auto; give a size in MiB for the CPU");
      }
      return 0;
    }
    return (long) s.integer("scheduler.kv_cache_mb", 256, 1, 1 << 20) << 20;
  }

  /**
   * {@code model.kv_encoding}, checked against the device and the KV type ({@code kv} as resolved:
   * empty for auto); empty when unset (each backend's default: {@code KvEncoding.cpuDefault} on the
   * CPU and on the GPU).
   */
  private static String kvEncoding(Settings s, String device, String kv) throws ConfigException {
    Optional<String> v = s.optional("model.kv_encoding");
    if (v.isEmpty()) {
      return "";
    }
    io.kvant.engine.kv.KvEncoding e;
    try {
      e = io.kvant.engine.kv.KvEncoding.parse(v.get());
    } catch (IllegalArgumentException ex) {
      throw new ConfigException(s.where("model.kv_encoding") + ": " + ex.getMessage());
    }
    String where = s.where("model.kv_encoding") + " " + e.optionName();
    if (e.needsScales() && !e.centersKeys()) {
      throw new ConfigException(
          where
              + ": static scales come from a calibration pass that the server does not run, and"
              + " lose to the per-token and per-block encodings on every model measured (kvant"
              + " eval --kv-encoding "
              + e.optionName()
              + " measures it)");
    }
    if (e != io.kvant.engine.kv.KvEncoding.PER_TOKEN) {
      if (!kv.equals("int8") && !kv.equals("fp8")) {
        throw new ConfigException(
            where
                + ": applies to --kv int8 or fp8 only, the KV cache is "
                + (kv.isEmpty() ? "the device's default" : kv));
      }
      if (device.equals("cuda") && e.rotates()) {
        throw new ConfigException(
            where
                + ": the CUDA backend encodes int8/fp8 KV per-token, per-token-mse, kivi,"
                + " kivi-mse, centered-mse or centered-qmse only; use --device cpu, or leave the"
                + " encoding unset (each device's default)");
      }
    }
    return e.optionName();
  }

  /** Usage text for the flags. */
  public static String flagHelp() {
    return """
        usage: kvant serve [--config FILE] [--model PATH] [--weights RECIPE] [--kv f32|int8|fp8]
                           [--port N] [--host ADDR] [--bucket URI] [flags...]
          --config FILE            YAML settings (flags override it)
          --model PATH             GGUF file, llama2.c .bin, or safetensors folder (default: bundled model)
          --tokenizer PATH         tokenizer for llama2.c checkpoints (default: tokenizer.bin beside it)
          --name NAME              model name clients use (default: file name)
          --weights RECIPE         quantize at load: none, w8, w4g128, w4g32, fp8, mixed (default none)
          --kv TYPE                KV cache storage: f32, int8, fp8 on the CPU (default f32);
                                   f16 (default), f32, int8 or fp8 on the GPU
          --kv-encoding E          how int8/fp8 KV is encoded (CPU): per-token, hadamard,
                                   per-token-mse, hadamard-mse, kivi, kivi-hadamard, kivi-mse,
                                   centered-mse, centered-qmse (these two take a quantize
                                   folder's kv_calibration.safetensors, else calibrate at load)
                                   (default: kivi for int8, per-token-mse for fp8, centered-qmse
                                   for fp8 when the folder has that file; the GPU
                                   implements per-token, per-token-mse, kivi, kivi-mse,
                                   centered-mse, centered-qmse)
          --device cpu|cuda|auto   where forward passes run (default cpu); auto falls back to
                                   the CPU when no usable GPU is found
          --port N                 gRPC port (default 50051)
          --host ADDR              listen address (default 0.0.0.0)
          --listen ADDRS           where to serve gRPC instead: unix:///path/kvant.sock (the sidecar
                                   socket), tcp://HOST:PORT or tcp (--host/--port), comma-separated
          --metrics-port N         Prometheus endpoint port, 0 = off (default 9464)
          --otlp-endpoint URL      export metrics and traces over OTLP/gRPC
          --threads N              compute threads (default: available processors)
          --drain-timeout SECONDS  grace period for in-flight requests at shutdown (default 30)
          --max-queue N            waiting requests before RESOURCE_EXHAUSTED (default 256)
          --max-batch-tokens N     token budget per engine step (default 512)
          --max-seqs N             running requests at once (default 64)
          --kv-cache-mb N|auto     KV cache budget in MiB (default 256); auto (GPU only): 90% of
                                   the free device memory after the weights, keeping room for
                                   one more copy of them (a hot swap) and 2 GiB
          --block-size N           tokens per KV block (default 16)
          --default-max-tokens N   max_tokens when a request sets 0 (default 256)
          --chat-template FILE     Jinja chat template for Chat and /v1/chat/completions
                                   (default: the model's tokenizer.chat_template / tokenizer_config.json)
          --http-port N            OpenAI-compatible HTTP API on this port (default: off)
          --log-format F           text or json (one JSON object per line) (default text)
          --admin-token-file F | --admin-token-env VAR        bearer token for ModelAdmin
          --generation-token-file F | --generation-token-env VAR   token for Generation (optional)
          --tls-cert PEM --tls-key PEM [--tls-client-ca PEM]  TLS, and mutual TLS with a client CA
          --bucket URI             artifact bucket to watch (file:// or s3://)
        reload agent (with --bucket):
          --agent-model NAME       model folder in the bucket (default: --name)
          --agent-channel NAME     follow <model>/channels/NAME (default: newest complete version)
          --agent-poll-seconds N   bucket listing period, 1-86400 (default 10)
          --agent-staging-dir DIR  download staging folder, kvant's own: created with a
                                   .kvant-staging marker; a non-empty folder without it is
                                   refused (default kvant-staging)
          --agent-qbom-dir DIR     append QBOM records to DIR/qbom.jsonl (default: memory only)
          --agent-watch-seconds N  keep the previous version for rollback, 0-604800 (default 300)
          --agent-auto-swap BOOL   swap new versions in when found (default true; false: Swap RPC only)
          --swap-policy P          default swap policy: drain, immediate, pause (default drain)
          --gate-min-top1 X        quality gate: min top-1 agreement, 0-1 (default 0.9)
          --gate-max-kl X          quality gate: max mean KL divergence, >= 0 (default 0.1)
          --rollback-error-rate X  roll back when the new version's error rate exceeds X, 0-1 (default 0.05)
          --rollback-min-requests N  requests before the error rate counts (default 20)
          --s3-endpoint URL        S3-compatible endpoint (MinIO, Ceph...); default AWS
          --s3-region R            signing region (default us-east-1)
          --s3-path-style BOOL     path-style addressing (default true)
          --s3-access-key-env VAR --s3-secret-key-env VAR   static credentials from the environment
                                   (default: the AWS SDK's default credential chain)
        """;
  }

  /**
   * Parses the flags (and the config file they name) into a validated config.
   *
   * @throws ConfigException naming the bad flag or setting
   */
  public ServerConfig load(List<String> args) throws ConfigException {
    Map<String, String> flags = new HashMap<>();
    Path file = null;
    for (int i = 0; i < args.size(); i++) {
      String a = args.get(i);
      if (!a.startsWith("--")) {
        throw new ConfigException("unexpected argument '" + a + "' (flags start with --)");
      }
      String name = a.substring(2);
      String value;
      int eq = name.indexOf('=');
      if (eq >= 0) {
        value = name.substring(eq + 1);
        name = name.substring(0, eq);
      } else {
        if (i + 1 >= args.size()) {
          throw new ConfigException("--" + name + ": needs a value");
        }
        value = args.get(++i);
      }
      if (name.equals("config")) {
        file = Path.of(value);
      } else if (FLAGS.containsKey(name)) {
        flags.put(FLAGS.get(name), value);
      } else {
        throw new ConfigException("unknown flag --" + name + " (see kvant serve --help)");
      }
    }
    Map<String, String> fromFile = file == null ? Map.of() : readYaml(file);
    Settings s = new Settings(file, fromFile, flags);
    return build(s);
  }

  private ServerConfig build(Settings s) throws ConfigException {
    String host = s.string("host", "0.0.0.0");
    int port = s.integer("port", 50051, 0, 65535);
    int threads = s.integer("threads", Runtime.getRuntime().availableProcessors(), 1, 1024);
    int drain = s.integer("drain_timeout_seconds", 30, 0, 3600);
    Optional<String> bucket = s.optional("bucket");
    if (bucket.isPresent()
        && !(bucket.get().startsWith("file://") || bucket.get().startsWith("s3://"))) {
      throw new ConfigException(
          s.where("bucket") + ": must start with file:// or s3://, got '" + bucket.get() + "'");
    }
    int metricsPort = s.integer("metrics.port", 9464, 0, 65535);
    Optional<String> otlp = s.optional("metrics.otlp_endpoint");

    Path modelPath = s.optional("model.path").map(Path::of).orElseGet(this::bundledModel);
    if (!Files.exists(modelPath)) {
      throw new ConfigException(
          s.where("model.path")
              + ": "
              + modelPath
              + " does not exist"
              + (s.optional("model.path").isEmpty()
                  ? " (the bundled model is missing: pass --model PATH to a GGUF file)"
                  : ""));
    }
    String defaultName = modelPath.getFileName().toString().replaceFirst("\\.[^.]*$", "");
    String name = s.string("model.name", defaultName);
    if (!name.matches("[A-Za-z0-9._-]{1,64}")) {
      throw new ConfigException(
          s.where("model.name")
              + ": must be 1-64 of letters, digits, '.', '_', '-', got '"
              + name
              + "'");
    }
    String weights = s.string("model.weights", "none");
    if (!weights.equals("none")) {
      try {
        io.kvant.quant.quantize.Recipe.resolve(weights);
      } catch (IllegalArgumentException | IOException e) {
        throw new ConfigException(s.where("model.weights") + ": " + e.getMessage());
      }
    }
    String device = s.string("model.device", "cpu");
    try {
      io.kvant.engine.forward.Device.parse(device);
    } catch (IllegalArgumentException e) {
      throw new ConfigException(s.where("model.device") + ": " + e.getMessage());
    }
    // The KV default depends on the backend: f32 on the CPU, f16 on the GPU ("" = default).
    String kv = s.string("model.kv", "");
    if (!kv.isEmpty() && !KV_TYPES.contains(kv)) {
      throw new ConfigException(
          s.where("model.kv") + ": must be one of f32, f16, int8, fp8, got '" + kv + "'");
    }
    if (device.equals("cpu") && kv.equals("f16")) {
      throw new ConfigException(
          s.where("model.kv")
              + ": f16 KV storage needs --device cuda (the CPU has f32, int8, fp8)");
    }
    if (kv.isEmpty()) {
      // auto stays empty: the backend that opens decides (f16 on a GPU, f32 on the CPU).
      kv = device.equals("cuda") ? "f16" : device.equals("cpu") ? "f32" : "";
    }
    String kvEncoding = kvEncoding(s, device, kv);
    Optional<Path> tokenizer = s.optional("model.tokenizer").map(Path::of);
    if (tokenizer.isPresent() && !Files.isRegularFile(tokenizer.get())) {
      throw new ConfigException(
          s.where("model.tokenizer") + ": " + tokenizer.get() + " is not a file");
    }
    int defaultMax = s.integer("model.default_max_tokens", 256, 1, 1 << 20);
    Optional<Path> chatTemplate = s.optional("model.chat_template").map(Path::of);
    if (chatTemplate.isPresent() && !Files.isRegularFile(chatTemplate.get())) {
      throw new ConfigException(
          s.where("model.chat_template") + ": " + chatTemplate.get() + " is not a file");
    }
    Optional<Integer> httpPort =
        s.optional("http.port").isPresent()
            ? Optional.of(s.integer("http.port", 0, 0, 65535))
            : Optional.empty();
    String logFormat = s.string("log.format", "text");
    if (!logFormat.equals("text") && !logFormat.equals("json")) {
      throw new ConfigException(
          s.where("log.format") + ": must be text or json, got '" + logFormat + "'");
    }
    Map<String, String> otelEnv = new HashMap<>();
    env.forEach(
        (k, v) -> {
          if (k.startsWith("OTEL_")) {
            otelEnv.put(k, v);
          }
        });

    SchedulerSettings sched =
        new SchedulerSettings(
            s.integer("scheduler.max_queue", 256, 1, 1_000_000),
            s.integer("scheduler.max_batch_tokens", 512, 1, 1 << 20),
            s.integer("scheduler.max_sequences", 64, 1, 4096),
            kvCacheBytes(s, device),
            s.integer("scheduler.block_size", 16, 1, 1024),
            s.integer("scheduler.max_prompt_bytes", 1 << 20, 1, 64 << 20));

    SecuritySettings security =
        new SecuritySettings(
            token(s, "security.admin_token"),
            token(s, "security.generation_token"),
            pemFile(s, "security.tls_cert"),
            pemFile(s, "security.tls_key"),
            pemFile(s, "security.tls_client_ca"));
    if (security.tlsCert().isPresent() != security.tlsKey().isPresent()) {
      throw new ConfigException(
          s.where("security.tls_cert")
              + ": TLS needs both a certificate and a key (tls_cert and tls_key)");
    }
    if (security.tlsClientCa().isPresent() && security.tlsCert().isEmpty()) {
      throw new ConfigException(
          s.where("security.tls_client_ca") + ": mutual TLS needs tls_cert and tls_key too");
    }
    ServerConfig.Listen listen = ServerConfig.Listen.TCP;
    Optional<String> listenSetting = s.optional("listen");
    if (listenSetting.isPresent()) {
      ListenAddresses parsed = ListenAddresses.parse(s.where("listen"), listenSetting.get());
      for (String key : new String[] {"host", "port"}) {
        if (s.optional(key).isPresent() && parsed.tcpAddress().isPresent()) {
          throw new ConfigException(
              s.where(key) + ": conflicts with the tcp:// address of " + s.where("listen"));
        }
        if (s.optional(key).isPresent() && !parsed.tcp()) {
          throw new ConfigException(
              s.where(key) + ": not used: " + s.where("listen") + " lists no tcp address");
        }
      }
      listen = new ServerConfig.Listen(parsed.tcp(), parsed.unix());
      if (parsed.tcpAddress().isPresent()) {
        host = parsed.tcpAddress().get().getHostString();
        port = parsed.tcpAddress().get().getPort();
      }
    }
    return new ServerConfig(
        host,
        port,
        new ModelSettings(modelPath, name, weights, kv, tokenizer, defaultMax, device, kvEncoding),
        sched,
        security,
        metricsPort,
        otlp,
        Duration.ofSeconds(drain),
        threads,
        bucket,
        agent(s),
        new ServerConfig.InteropSettings(httpPort, chatTemplate, otelEnv, logFormat),
        listen);
  }

  private AgentConfig agent(Settings s) throws ConfigException {
    Optional<String> model = s.optional("agent.model");
    if (model.isPresent() && !model.get().matches("[A-Za-z0-9][A-Za-z0-9._-]{0,127}")) {
      throw new ConfigException(
          s.where("agent.model") + ": must be 1-128 of letters, digits, '.', '_', '-'");
    }
    Optional<String> channel = s.optional("agent.channel");
    if (channel.isPresent() && !channel.get().matches("[A-Za-z0-9][A-Za-z0-9._-]{0,127}")) {
      throw new ConfigException(
          s.where("agent.channel") + ": must be 1-128 of letters, digits, '.', '_', '-'");
    }
    String policyText = s.string("agent.swap_policy", "drain");
    SwapMode policy = null;
    for (SwapMode mode : SwapMode.values()) {
      if (mode.name().equalsIgnoreCase(policyText)) {
        policy = mode;
      }
    }
    if (policy == null) {
      throw new ConfigException(
          s.where("agent.swap_policy")
              + ": must be drain, immediate or pause, got '"
              + policyText
              + "'");
    }
    Optional<String> endpoint = s.optional("agent.s3.endpoint");
    if (endpoint.isPresent()) {
      try {
        java.net.URI u = new java.net.URI(endpoint.get());
        if (u.getScheme() == null
            || !(u.getScheme().equals("http") || u.getScheme().equals("https"))
            || u.getHost() == null) {
          throw new java.net.URISyntaxException(endpoint.get(), "not http(s)://host[:port]");
        }
      } catch (java.net.URISyntaxException e) {
        throw new ConfigException(
            s.where("agent.s3.endpoint")
                + ": must be an http:// or https:// URL, got '"
                + endpoint.get()
                + "'");
      }
    }
    Optional<String> access = envValue(s, "agent.s3.access_key_env");
    Optional<String> secret = envValue(s, "agent.s3.secret_key_env");
    if (access.isPresent() != secret.isPresent()) {
      throw new ConfigException(
          s.where("agent.s3.access_key_env")
              + ": set both agent.s3.access_key_env and agent.s3.secret_key_env, or neither");
    }
    AgentConfig.GateConfig gate = AgentConfig.GateConfig.defaults();
    return new AgentConfig(
        model,
        channel,
        Duration.ofSeconds(s.integer("agent.poll_interval_seconds", 10, 1, 86_400)),
        Path.of(s.string("agent.staging_dir", "kvant-staging")),
        s.optional("agent.qbom_dir").map(Path::of),
        Duration.ofSeconds(s.integer("agent.watch_window_seconds", 300, 0, 604_800)),
        s.bool("agent.auto_swap", true),
        policy,
        s.real("agent.gate.min_top1", 0.9, 0, 1),
        s.real("agent.gate.max_kl", 0.1, 0, 1e6),
        s.real("agent.rollback.error_rate", 0.05, 0, 1),
        s.integer("agent.rollback.min_requests", 20, 1, 1_000_000),
        new AgentConfig.S3Config(
            endpoint,
            s.string("agent.s3.region", "us-east-1"),
            s.bool("agent.s3.path_style", true),
            access,
            secret),
        new AgentConfig.GateConfig(
            s.real("agent.gate.max_ppl_ratio", gate.maxPplRatio(), 1, 1e6),
            s.real("agent.gate.max_kl_vs_serving", gate.maxKlVsServing(), 0, 1e6),
            s.integer("agent.shadow.every", gate.shadowEvery(), 0, 1_000_000),
            s.integer("agent.shadow.min_positions", gate.shadowMinPositions(), 1, 1_000_000_000),
            s.real("agent.shadow.min_top1", gate.shadowMinTop1(), 0, 1),
            s.real("agent.shadow.max_kl", gate.shadowMaxKl(), 0, 1e6)));
  }

  private Optional<String> envValue(Settings s, String key) throws ConfigException {
    Optional<String> var = s.optional(key);
    if (var.isEmpty()) {
      return Optional.empty();
    }
    String v = env.get(var.get());
    if (v == null || v.isBlank()) {
      throw new ConfigException(
          s.where(key) + ": environment variable " + var.get() + " is not set");
    }
    return Optional.of(v.strip());
  }

  private Path bundledModel() {
    return bundledModel(env);
  }

  /** Where the bundled model is: under {@code KVANT_HOME} (set by the launcher), else the cwd. */
  public static Path bundledModel(Map<String, String> env) {
    return Path.of(env.getOrDefault("KVANT_HOME", ".")).resolve(BUNDLED_MODEL);
  }

  private Optional<String> token(Settings s, String prefix) throws ConfigException {
    Optional<String> fileSetting = s.optional(prefix + "_file");
    Optional<String> envSetting = s.optional(prefix + "_env");
    if (fileSetting.isPresent() && envSetting.isPresent()) {
      throw new ConfigException(
          s.where(prefix + "_file")
              + ": set either "
              + prefix
              + "_file or "
              + prefix
              + "_env, not both");
    }
    if (fileSetting.isPresent()) {
      Path p = Path.of(fileSetting.get());
      try {
        String t = Files.readString(p, StandardCharsets.UTF_8).strip();
        if (t.isEmpty()) {
          throw new ConfigException(s.where(prefix + "_file") + ": " + p + " is empty");
        }
        return Optional.of(t);
      } catch (IOException e) {
        throw new ConfigException(
            s.where(prefix + "_file") + ": cannot read " + p + ": " + e.getMessage());
      }
    }
    if (envSetting.isPresent()) {
      String t = env.get(envSetting.get());
      if (t == null || t.isBlank()) {
        throw new ConfigException(
            s.where(prefix + "_env")
                + ": environment variable "
                + envSetting.get()
                + " is not set");
      }
      return Optional.of(t.strip());
    }
    return Optional.empty();
  }

  private static Optional<Path> pemFile(Settings s, String key) throws ConfigException {
    Optional<Path> p = s.optional(key).map(Path::of);
    if (p.isPresent() && !Files.isReadable(p.get())) {
      throw new ConfigException(s.where(key) + ": cannot read " + p.get());
    }
    return p;
  }

  private static Map<String, String> readYaml(Path file) throws ConfigException {
    JsonNode root;
    try {
      root = new ObjectMapper(new YAMLFactory()).readTree(file.toFile());
    } catch (com.fasterxml.jackson.core.JacksonException e) {
      throw new ConfigException(file + ": not valid YAML: " + e.getOriginalMessage());
    } catch (IOException e) {
      throw new ConfigException(file + ": cannot read: " + e.getMessage());
    }
    Map<String, String> flat = new HashMap<>();
    if (root == null || root.isNull() || root.isMissingNode()) {
      return flat;
    }
    if (!root.isObject()) {
      throw new ConfigException(file + ": the top level must be a mapping of settings");
    }
    flatten(file, "", root, flat);
    Set<String> known = Set.copyOf(FLAGS.values());
    for (String key : flat.keySet()) {
      if (!known.contains(key)) {
        throw new ConfigException(file + ": unknown setting '" + key + "'");
      }
    }
    return flat;
  }

  private static void flatten(Path file, String prefix, JsonNode node, Map<String, String> out)
      throws ConfigException {
    Iterator<Map.Entry<String, JsonNode>> it = node.properties().iterator();
    while (it.hasNext()) {
      Map.Entry<String, JsonNode> e = it.next();
      String key = prefix + e.getKey();
      JsonNode v = e.getValue();
      if (v.isObject()) {
        flatten(file, key + ".", v, out);
      } else if (v.isValueNode() && !v.isNull()) {
        out.put(key, v.asText());
      } else if (!v.isNull()) {
        throw new ConfigException(file + ": " + key + ": must be a single value");
      }
    }
  }

  /** Looks a setting up in the flags, then the file, and says where a value came from. */
  private record Settings(Path file, Map<String, String> fromFile, Map<String, String> flags) {
    Optional<String> optional(String key) {
      String v = flags.get(key);
      if (v == null) {
        v = fromFile.get(key);
      }
      return Optional.ofNullable(v).filter(x -> !x.isBlank());
    }

    String string(String key, String def) {
      return optional(key).orElse(def);
    }

    int integer(String key, int def, int min, int max) throws ConfigException {
      Optional<String> v = optional(key);
      if (v.isEmpty()) {
        return def;
      }
      int parsed;
      try {
        parsed = Integer.parseInt(v.get().strip());
      } catch (NumberFormatException e) {
        throw new ConfigException(where(key) + ": must be an integer, got '" + v.get() + "'");
      }
      if (parsed < min || parsed > max) {
        throw new ConfigException(
            where(key) + ": must be in [" + min + ", " + max + "], got " + parsed);
      }
      return parsed;
    }

    double real(String key, double def, double min, double max) throws ConfigException {
      Optional<String> v = optional(key);
      if (v.isEmpty()) {
        return def;
      }
      double parsed;
      try {
        parsed = Double.parseDouble(v.get().strip());
      } catch (NumberFormatException e) {
        throw new ConfigException(where(key) + ": must be a number, got '" + v.get() + "'");
      }
      if (!(parsed >= min && parsed <= max)) {
        throw new ConfigException(
            where(key) + ": must be in [" + min + ", " + max + "], got " + v.get().strip());
      }
      return parsed;
    }

    boolean bool(String key, boolean def) throws ConfigException {
      Optional<String> v = optional(key);
      if (v.isEmpty()) {
        return def;
      }
      return switch (v.get().strip().toLowerCase(java.util.Locale.ROOT)) {
        case "true" -> true;
        case "false" -> false;
        default ->
            throw new ConfigException(
                where(key) + ": must be true or false, got '" + v.get() + "'");
      };
    }

    /** "--flag" when the flag set it, "file: key" when the file did. */
    String where(String key) {
      if (flags.containsKey(key)) {
        for (Map.Entry<String, String> e : FLAGS.entrySet()) {
          if (e.getValue().equals(key)) {
            return "--" + e.getKey();
          }
        }
      }
      if (fromFile.containsKey(key)) {
        return file + ": " + key;
      }
      return key;
    }
  }
}
