package io.kvant.server.cli;

import io.kvant.engine.model.Model;
import io.kvant.engine.tensor.ComputePool;
import io.kvant.quant.artifact.KvCalibrationFile;
import io.kvant.quant.artifact.Manifest;
import io.kvant.quant.artifact.ModelOpener;
import io.kvant.quant.artifact.QuantizedArtifact;
import io.kvant.quant.quantize.Calibration;
import io.kvant.quant.quantize.KvCalibration;
import io.kvant.quant.quantize.QuantizedModel;
import io.kvant.quant.quantize.Quantizer;
import io.kvant.quant.quantize.Recipe;
import io.kvant.server.cli.Flags.UsageException;
import io.kvant.server.config.ConfigLoader;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * {@code kvant quantize}: quantizes a full-precision model with a recipe and writes a loadable
 * version folder (safetensors, encodings.json, qbom.json, kv_calibration.safetensors unless {@code
 * --no-kv-calibration}, manifest.json; see {@link QuantizedArtifact}).
 */
final class QuantizeCommand {
  static final String HELP =
      """
      usage: kvant quantize [--model PATH] --recipe NAME|FILE [--calibration FILE] --out DIR
                            [--version V] [--parent V] [--publisher WHO] [--model-name NAME]
                            [--no-kv-calibration]
        --recipe           w8, w4g128, w4g32, fp8, mixed, q4_0, q8_0, NAME:METHOD (minmax,
                           percentile, mse, awq, gptq, smoothquant) or a recipe JSON file;
                           calibrated: fp8-gptq, w4g32-asym-gptq, w4g128-asym-gptq (the best
                           FP8 and INT4 of perf/RESULTS.md); w8:smoothquant (INT8 per-channel
                           with SmoothQuant factors, for the GPU's W8A8 products)
        --calibration FILE calibration text (default: built-in stories); needed by awq, gptq,
                           smoothquant
        --out DIR          the version folder to write, new or empty (manifest.json is written last)
        --no-kv-calibration
                           skip kv_calibration.safetensors: by default the folder carries the
                           full-precision model's KV statistics over the built-in calibration
                           text (one prefill pass), which serve uses for the centered FP8/INT8
                           KV encodings (the FP8 default on the CPU) instead of a pass at start
      """;

  private static final Set<String> VALUED =
      Set.of(
          "model",
          "tokenizer",
          "recipe",
          "calibration",
          "out",
          "version",
          "parent",
          "publisher",
          "model-name");

  private final PrintStream out;
  private final PrintStream err;
  private final Map<String, String> env;
  private final Clock clock;

  QuantizeCommand(PrintStream out, PrintStream err, Map<String, String> env) {
    this(out, err, env, Clock.systemUTC());
  }

  QuantizeCommand(PrintStream out, PrintStream err, Map<String, String> env, Clock clock) {
    this.out = out;
    this.err = err;
    this.env = env;
    this.clock = clock;
  }

  int run(List<String> args) {
    if (args.contains("--help")) {
      out.print(HELP);
      return 0;
    }
    try {
      Flags f = Flags.parse(args, VALUED, Set.of("help", "no-kv-calibration"));
      Path modelPath = f.string("model").map(Path::of).orElse(ConfigLoader.bundledModel(env));
      String recipeName =
          f.string("recipe").orElseThrow(() -> new UsageException("--recipe is required"));
      Path outDir =
          Path.of(f.string("out").orElseThrow(() -> new UsageException("--out is required")));
      refuseNonEmpty(outDir);
      Recipe recipe = Recipe.resolve(recipeName);
      String calText =
          f.has("calibration")
              ? Files.readString(Path.of(f.string("calibration").orElseThrow()))
              : Calibration.builtinCalibrationText();
      try (Model model = ModelOpener.load(modelPath, f.string("tokenizer").map(Path::of))) {
        Calibration cal =
            Calibration.fromText(
                calText, model.tokenizer(), Math.min(256, model.config().contextLength()));
        String publisher = f.string("publisher").orElse("kvant-quantize");
        QuantizedModel q;
        try {
          q = new Quantizer(clock, publisher, Quantizer.loadThreads()).run(model, recipe, cal);
        } catch (OutOfMemoryError e) {
          // one large allocation failed; nothing is written yet (the manifest comes last)
          err.println(
              "kvant quantize: "
                  + Quantizer.outOfHeap(
                      "quantizing " + modelPath, Runtime.getRuntime().maxMemory()));
          return 1;
        }
        Optional<KvCalibrationFile.Contents> kv =
            f.flag("no-kv-calibration") ? Optional.empty() : Optional.of(kvCalibration(model));
        String name = f.string("model-name").orElse(stem(modelPath));
        Instant now = clock.instant();
        Manifest m =
            QuantizedArtifact.write(
                q.contents(),
                outDir,
                new QuantizedArtifact.Info(
                    name,
                    f.string("version")
                        .orElse(recipe.name().replace(':', '-') + "-" + now.getEpochSecond()),
                    f.string("parent").orElse(null),
                    publisher,
                    now),
                kv);
        out.println(
            "wrote "
                + outDir
                + ": "
                + m.files().size()
                + " files, "
                + m.tensors().size()
                + " tensors, "
                + q.model().weights().matrixBytes()
                + " weight bytes (recipe "
                + recipe.name()
                + ")");
        return 0;
      }
    } catch (UsageException e) {
      err.println("kvant quantize: " + e.getMessage());
      return 2;
    } catch (IOException | IllegalArgumentException e) {
      err.println("kvant quantize: " + e.getMessage());
      return 1;
    }
  }

  /**
   * A version folder is written once: an {@code --out} that already holds files (a published
   * version, which a server or agent may be reading, or anything else) is refused before any work,
   * so that nothing there is overwritten. An absent or empty folder is fine.
   */
  private static void refuseNonEmpty(Path outDir) throws UsageException, IOException {
    if (Files.exists(outDir) && !Files.isDirectory(outDir)) {
      throw new UsageException("--out " + outDir + " is a file, not a folder");
    }
    if (!Files.isDirectory(outDir)) {
      return;
    }
    try (var entries = Files.list(outDir)) {
      if (entries.findAny().isPresent()) {
        throw new UsageException(
            "--out "
                + outDir
                + " is not empty"
                + (Files.exists(outDir.resolve("manifest.json"))
                    ? " (it holds a version: manifest.json)"
                    : "")
                + "; versions are written once: give a new or empty folder");
      }
    }
  }

  /**
   * The KV statistics of the full-precision {@code model} over the built-in calibration text (the
   * pass serve would otherwise run at every start), timed on {@link #out}.
   */
  private KvCalibrationFile.Contents kvCalibration(Model model) {
    long t0 = System.nanoTime();
    KvCalibration.Measured m;
    try (ComputePool pool = new ComputePool(Runtime.getRuntime().availableProcessors())) {
      m = KvCalibration.builtin(model, pool);
    }
    out.println(
        "kv calibration: "
            + m.tokens()
            + " tokens of the built-in calibration text in "
            + (System.nanoTime() - t0) / 1_000_000
            + " ms ("
            + KvCalibrationFile.FILE_NAME
            + ")");
    return new KvCalibrationFile.Contents(
        m.scales(), new KvCalibrationFile.Source(KvCalibration.BUILTIN_TEXT, m.tokens()));
  }

  private static String stem(Path p) {
    String n = p.toAbsolutePath().normalize().getFileName().toString();
    int dot = n.lastIndexOf('.');
    return dot > 0 ? n.substring(0, dot) : n;
  }
}
