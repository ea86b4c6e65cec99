package io.kvant.server.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kvant.cuda.Backends;
import io.kvant.cuda.device.CudaOptions;
import io.kvant.engine.format.gguf.GgufFile;
import io.kvant.engine.format.gguf.GgufReader;
import io.kvant.engine.forward.ComputeBackend;
import io.kvant.engine.forward.CpuBackend;
import io.kvant.engine.forward.Device;
import io.kvant.engine.kv.ContiguousKvStore;
import io.kvant.engine.model.LlamaConfig;
import io.kvant.engine.model.Model;
import io.kvant.engine.tensor.ComputePool;
import io.kvant.quant.artifact.ModelOpener;
import io.kvant.quant.quantize.Calibration;
import io.kvant.quant.quantize.EvalText;
import io.kvant.quant.quantize.Evaluator;
import io.kvant.quant.quantize.QuantizedModel;
import io.kvant.quant.quantize.Quantizer;
import io.kvant.quant.quantize.Recipe;
import io.kvant.quant.quantize.Sensitivity;
import io.kvant.quant.quantize.W8a8Simulation;
import io.kvant.server.cli.Flags.UsageException;
import io.kvant.server.config.ConfigLoader;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * {@code kvant eval}: quantizes a model in memory (or loads a quantized artifact folder) and
 * compares it with the full-precision model on a held-out text; prints one JSON line (the fields of
 * {@link Evaluator.Result}, near-tie ones included, see {@link Evaluator}). With {@code
 * --sensitivity} it prints the per-tensor sensitivity table as JSON instead.
 */
final class EvalCommand {
  static final String HELP =
      """
      usage: kvant eval [--model PATH] (--weights RECIPE | --quantized DIR) [--kv f32|int8|fp8|f16]
                        [--kv-encoding E] [--text FILE]
                        [--calibration FILE] [--sensitivity] [--threads N]
                        [--device cpu|cuda|auto] [--simulate-w8a8]
        --weights RECIPE   built-in recipe (w8, w4g128, w4g32, fp8, mixed, q4_0, q8_0,
                           fp8-gptq, w4g32-asym-gptq, w4g128-asym-gptq),
                           NAME:METHOD (e.g. w4g128:awq, w8:gptq, w4g32:minmax,
                           w8:smoothquant) or a recipe file
        --quantized DIR    a folder written by 'kvant quantize' (compared with --model)
        --kv TYPE          KV cache storage of the quantized run: f32 (default), int8, fp8;
                           f16 on the GPU
        --kv-encoding E    how int8/fp8 KV is encoded: per-token (one absmax scale per token
                           and head), hadamard (rotated first), per-token-mse and hadamard-mse
                           (the per-token scale of least squared error), kivi (keys per channel
                           in each block, values per token), kivi-hadamard, kivi-mse (values
                           by -mse), static (fixed per-channel scales from a calibration pass
                           over --calibration text), static-hadamard, centered-mse (keys
                           minus their calibrated mean before RoPE, then per-token-mse),
                           centered-qmse (and the key scale weighted by the queries'
                           calibrated second moments); default: kivi for int8,
                           per-token-mse for fp8 (a GPU implements per-token,
                           per-token-mse, kivi, kivi-mse and the centered two). The
                           centered ones take their statistics from the --quantized
                           folder's kv_calibration.safetensors when it has one and no
                           --calibration is given (kv_statistics in the output says which)
        --device D         engine of both runs: cpu (default), cuda, or auto (cuda where a GPU
                           is usable); the reference runs with F32 KV on the same engine
        --text FILE        evaluation text (default: the built-in held-out text that matches
                           the model: KJV chapters for kvant-kjv-7m, stories otherwise)
        --calibration FILE calibration text for awq/gptq/mse (default: built-in calibration stories)
        --sensitivity      per layer and role: the KL each tensor's quantization causes alone
        --simulate-w8a8    CPU only: the quantized run quantizes the input of every INT8
                           per-channel and FP8 E4M3 matrix per token first, as the GPU's W8A8
                           products do (KVANT_CUDA_W8A8); a measurement, not a serving path;
                           adds w8a8_vs_weight_only_* (the same artifact without it as the
                           reference)
      output: top1_agreement (raw), mean_kl, ppl_*; near_tie_positions (reference top-1 minus
        top-2 probability < 0.01), flips_near_tie (share of disagreements at near ties),
        top1_agreement_excluding_ties (agreement over the other positions)
      """;

  private static final Set<String> VALUED =
      Set.of(
          "model",
          "tokenizer",
          "weights",
          "quantized",
          "kv",
          "kv-encoding",
          "text",
          "calibration",
          "threads",
          "max-len",
          "device");

  private final PrintStream out;
  private final PrintStream err;
  private final Map<String, String> env;

  EvalCommand(PrintStream out, PrintStream err, Map<String, String> env) {
    this.out = out;
    this.err = err;
    this.env = env;
  }

  int run(List<String> args) {
    if (args.contains("--help")) {
      out.print(HELP);
      return 0;
    }
    try {
      Flags f = Flags.parse(args, VALUED, Set.of("sensitivity", "simulate-w8a8", "help"));
      Path modelPath = f.string("model").map(Path::of).orElse(ConfigLoader.bundledModel(env));
      if (f.has("weights") == f.has("quantized")) {
        throw new UsageException("give exactly one of --weights RECIPE or --quantized DIR");
      }
      String kv = f.string("kv").orElse("f32");
      io.kvant.engine.kv.KvCacheType kvType;
      try {
        kvType = io.kvant.server.grpc.KvTypes.parse(kv);
      } catch (IllegalArgumentException e) {
        throw new UsageException("--kv: must be f32, int8 or fp8, got '" + kv + "'");
      }
      // Unset: the device's default (KvEncoding.cpuDefault, on the CPU and on a GPU).
      io.kvant.engine.kv.KvEncoding explicitEncoding = null;
      if (f.has("kv-encoding")) {
        try {
          explicitEncoding = io.kvant.engine.kv.KvEncoding.parse(f.string("kv-encoding").get());
        } catch (IllegalArgumentException e) {
          throw new UsageException("--kv-encoding: " + e.getMessage());
        }
        if (explicitEncoding != io.kvant.engine.kv.KvEncoding.PER_TOKEN
            && kvType.elementBytes() != 1) {
          throw new UsageException(
              "--kv-encoding "
                  + explicitEncoding.optionName()
                  + " applies to --kv int8 or fp8 only");
        }
      }
      int threads = f.integer("threads", Runtime.getRuntime().availableProcessors(), 1, 1024);
      int maxLen = f.integer("max-len", 256, 2, 1 << 20);
      Device device;
      try {
        device = Device.parse(f.string("device").orElse("cpu"));
      } catch (IllegalArgumentException e) {
        throw new UsageException("--device: " + e.getMessage());
      }
      String calText = read(f.string("calibration")).orElse(Calibration.builtinCalibrationText());
      try (Model model = ModelOpener.load(modelPath, f.string("tokenizer").map(Path::of));
          ComputePool pool = new ComputePool(threads);
          ComputeBackend backend =
              Backends.open(device, CudaOptions.fromEnvironment(env), pool, err::println)) {
        EvalText builtin = EvalText.forModel(describe(modelPath, model));
        String text = read(f.string("text")).orElse(builtin.text());
        String textLabel = f.string("text").map(t -> "file:" + t).orElse(builtin.label());
        LlamaConfig cfg = model.config();
        int len = Math.min(maxLen, cfg.contextLength());
        Calibration evalSet = Calibration.fromText(text, model.tokenizer(), len);
        Calibration cal = Calibration.fromText(calText, model.tokenizer(), len);
        // The reference always runs on F32 KV; the candidate on the --kv storage. On the CPU the
        // stores are the engine's own; on another backend they are that backend's block pool.
        boolean cpu = backend instanceof CpuBackend;
        io.kvant.engine.kv.KvEncoding kvEncoding =
            explicitEncoding != null ? explicitEncoding : backend.defaultKvEncoding(kvType);
        // The static encodings' scales, the centered ones' key moments: the full-precision model
        // over the calibration text (on the CPU engine, whatever the device, as serve does), or for
        // a centered encoding the --quantized folder's kv_calibration.safetensors (what serve
        // uses) unless --calibration asks for other text. Another backend takes only the centered
        // ones' (its storage refuses the static encodings).
        io.kvant.engine.kv.KvScales kvScales = null;
        String kvStatistics = "none";
        if (kvEncoding.needsScales() && (cpu || kvEncoding.centersKeys())) {
          Optional<io.kvant.quant.artifact.KvCalibrationFile.Contents> folder = Optional.empty();
          if (kvEncoding.centersKeys() && f.has("quantized") && !f.has("calibration")) {
            Path dir = Path.of(f.string("quantized").orElseThrow());
            if (io.kvant.quant.artifact.QuantizedArtifact.isArtifact(dir)) {
              folder = io.kvant.quant.artifact.QuantizedArtifact.kvCalibration(dir, cfg);
            }
          }
          if (folder.isPresent()) {
            kvScales = folder.get().scales();
            kvStatistics = io.kvant.quant.artifact.KvCalibrationFile.FILE_NAME;
          } else {
            try (var engine = new io.kvant.engine.forward.Transformer(cfg, model.weights(), pool)) {
              kvScales =
                  io.kvant.quant.quantize.KvCalibration.measure(
                      engine, cal.sequences(), kvEncoding.rotates(), kvEncoding.centersKeys());
            }
            kvStatistics = "calibration pass";
          }
        }
        io.kvant.engine.kv.KvStoreFactory deviceStorage = null;
        if (!cpu) {
          try {
            deviceStorage = backend.kvStorage(kvEncoding, kvScales); // null scales: none needed
          } catch (IllegalArgumentException e) {
            throw new UsageException("--kv-encoding: " + e.getMessage() + "; use --device cpu");
          }
        }
        io.kvant.engine.kv.KvStoreFactory candidateStorage =
            cpu ? io.kvant.engine.kv.KvStoreFactory.host(kvEncoding, kvScales) : deviceStorage;
        Evaluator ev =
            cpu
                ? new Evaluator(
                    cfg,
                    pool,
                    () ->
                        new ContiguousKvStore(cfg.layers(), cfg.kvHeads(), cfg.headSize(), len, 1))
                : new Evaluator(
                    cfg,
                    () ->
                        pagedStore(
                            cfg, io.kvant.engine.kv.KvCacheType.F32, len, backend.kvStorage()),
                    w -> backend.load(cfg, w));
        boolean simulate = f.flag("simulate-w8a8");
        if (simulate && (!cpu || f.flag("sensitivity"))) {
          throw new UsageException(
              "--simulate-w8a8 runs on --device cpu and without --sensitivity (on a GPU, W8A8 is"
                  + " KVANT_CUDA_W8A8)");
        }
        java.util.function.Supplier<io.kvant.engine.kv.KvStore> candidateKv =
            kvType == io.kvant.engine.kv.KvCacheType.F32 && cpu
                ? () -> new ContiguousKvStore(cfg.layers(), cfg.kvHeads(), cfg.headSize(), len, 1)
                : () -> pagedStore(cfg, kvType, len, candidateStorage);
        ObjectMapper json = new ObjectMapper();
        if (f.has("quantized")) {
          try (Model q =
              ModelOpener.load(Path.of(f.string("quantized").orElseThrow()), Optional.empty())) {
            Compared c = compare(simulate, cfg, pool, ev, model, q.weights(), evalSet, candidateKv);
            out.println(
                json.writeValueAsString(
                    c.addTo(line(json, "artifact:" + q.source(), kv, c.result(), q))
                        .put("kv_encoding", kvEncoding.optionName())
                        .put("kv_statistics", kvStatistics)
                        .put("eval_text", textLabel)
                        .put("device", backend.describe())));
          }
          return 0;
        }
        Recipe recipe = Recipe.resolve(f.string("weights").orElseThrow());
        if (f.flag("sensitivity")) {
          out.println(
              json.writeValueAsString(
                  new Sensitivity(pool, ev).report(model, recipe, cal, evalSet)));
          return 0;
        }
        QuantizedModel qm = new Quantizer(Clock.systemUTC(), "kvant-eval").run(model, recipe, cal);
        Compared c =
            compare(simulate, cfg, pool, ev, model, qm.model().weights(), evalSet, candidateKv);
        out.println(
            json.writeValueAsString(
                c.addTo(line(json, recipe.name(), kv, c.result(), qm.model()))
                    .put("kv_encoding", kvEncoding.optionName())
                    .put("kv_statistics", kvStatistics)
                    .put("eval_text", textLabel)
                    .put("device", backend.describe())));
        return 0;
      }
    } catch (UsageException e) {
      err.println("kvant eval: " + e.getMessage());
      return 2;
    } catch (IOException | IllegalArgumentException e) {
      err.println("kvant eval: " + e.getMessage());
      return 1;
    } catch (OutOfMemoryError e) {
      // one large allocation of the quantizer or of the comparison; nothing is written
      err.println(
          "kvant eval: "
              + io.kvant.quant.quantize.Quantizer.outOfHeap(
                  "evaluating", Runtime.getRuntime().maxMemory()));
      return 1;
    }
  }

  /**
   * {@code --simulate-w8a8}: the full-precision model against {@code candidate} on the CPU engine
   * with every W8A8 matrix input quantized per token ({@link W8a8Simulation}), and the same
   * artifact's weight-only products against that (what the GPU comparisons measure, on real text);
   * or the plain comparison without the flag.
   */
  private static Compared compare(
      boolean simulate,
      LlamaConfig cfg,
      ComputePool pool,
      Evaluator ev,
      Model model,
      io.kvant.engine.model.ModelWeights candidate,
      Calibration evalSet,
      java.util.function.Supplier<io.kvant.engine.kv.KvStore> candidateKv)
      throws UsageException {
    if (!simulate) {
      return new Compared(
          ev.compare(model.weights(), candidate, evalSet.sequences(), candidateKv), null);
    }
    if (!W8a8Simulation.appliesTo(candidate)) {
      throw new UsageException(
          "--simulate-w8a8: no INT8 per-channel or FP8 E4M3 matrix to simulate W8A8 for");
    }
    try (var ref = new io.kvant.engine.forward.Transformer(cfg, model.weights(), pool);
        var weightOnly = new io.kvant.engine.forward.Transformer(cfg, candidate, pool);
        var w8a8 =
            new io.kvant.engine.forward.Transformer(
                cfg, candidate, pool, new W8a8Simulation(candidate))) {
      return new Compared(
          ev.compare(ref, w8a8, evalSet.sequences(), candidateKv),
          ev.compare(weightOnly, w8a8, evalSet.sequences(), candidateKv));
    }
  }

  /** A comparison with the full-precision model, and W8A8 against weight-only when simulated. */
  private record Compared(Evaluator.Result result, Evaluator.Result w8a8VsWeightOnly) {
    ObjectNode addTo(ObjectNode o) {
      o.put("simulate_w8a8", w8a8VsWeightOnly != null);
      if (w8a8VsWeightOnly != null) {
        Evaluator.Result r = w8a8VsWeightOnly;
        o.put("w8a8_vs_weight_only_top1_excluding_ties", r.top1AgreementExcludingTies());
        o.put("w8a8_vs_weight_only_mean_kl", r.meanKl());
        o.put("w8a8_vs_weight_only_ppl_change", r.pplCandidate() / r.pplReference() - 1);
      }
      return o;
    }
  }

  private static ObjectNode line(
      ObjectMapper json, String recipe, String kv, Evaluator.Result r, Model q) {
    ObjectNode o = json.createObjectNode();
    o.put("recipe", recipe);
    o.put("kv", kv);
    o.put("positions", r.positions());
    o.put("top1_agreement", r.top1Agreement());
    o.put("mean_kl", r.meanKl());
    o.put("top1_agreement_excluding_ties", r.top1AgreementExcludingTies());
    o.put("disagreements", r.disagreements());
    o.put("flips_near_tie", r.flipsNearTie());
    o.put("near_tie_positions", r.nearTies());
    o.put("ppl_reference", r.pplReference());
    o.put("ppl_quantized", r.pplCandidate());
    o.put("weight_bytes", q.weights().matrixBytes());
    return o;
  }

  /** A GGUF's name and description, else the file or folder name. */
  private static String describe(Path path, Model model) {
    if (model.format().equals("gguf")) {
      try (GgufFile g = GgufReader.open(path)) {
        return g.findString("general.name").orElse("")
            + " "
            + g.findString("general.description").orElse("")
            + " "
            + path.getFileName();
      } catch (IOException e) {
        return path.getFileName().toString();
      }
    }
    return path.getFileName().toString();
  }

  private static Optional<String> read(Optional<String> file) throws IOException {
    return file.isEmpty() ? Optional.empty() : Optional.of(Files.readString(Path.of(file.get())));
  }

  /**
   * A paged store of {@code type} in {@code storage} holding one sequence (handle 0) of up to
   * {@code len} tokens.
   */
  static io.kvant.engine.kv.KvStore pagedStore(
      LlamaConfig cfg,
      io.kvant.engine.kv.KvCacheType type,
      int len,
      io.kvant.engine.kv.KvStoreFactory storage) {
    var g = new io.kvant.engine.kv.KvGeometry(cfg.layers(), cfg.kvHeads(), cfg.headSize());
    long blocks = (len + 15) / 16 + 1;
    var m =
        new io.kvant.engine.kv.KvCacheManager(
            g,
            new io.kvant.engine.kv.KvCacheConfig(
                type,
                16,
                blocks * 16 * g.bytesPerToken(type),
                io.kvant.engine.kv.EvictionPolicyKind.LRU,
                false),
            storage);
    int seq = m.open(m.findCachedPrefix(new int[len], len, "eval"), len);
    if (seq != 0) {
      throw new IllegalStateException("a fresh KV cache gave handle " + seq + ", expected 0");
    }
    return m.store();
  }
}
