package io.kvant.server.cli;

import io.kvant.cuda.Backends;
import io.kvant.cuda.device.CudaOptions;
import io.kvant.engine.forward.ComputeBackend;
import io.kvant.engine.forward.Device;
import io.kvant.engine.forward.ForwardPass;
import io.kvant.engine.forward.Transformer;
import io.kvant.engine.generate.GenerationResult;
import io.kvant.engine.generate.Generator;
import io.kvant.engine.model.Model;
import io.kvant.engine.sample.SamplingParams;
import io.kvant.engine.tensor.ComputePool;
import io.kvant.quant.artifact.ModelOpener;
import io.kvant.server.cli.Flags.UsageException;
import io.kvant.server.config.ConfigLoader;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * {@code kvant generate}: one completion on the command line, streamed to stdout. With {@code
 * --ids} it prints the generated token ids instead, space-separated on one line.
 */
final class GenerateCommand {
  static final String HELP =
      """
      usage: kvant generate [--model PATH] (--prompt TEXT | --prompt-ids 1,2,3) [--max-tokens N]
                            [--temperature T] [--top-k K] [--top-p P] [--min-p P] [--seed S]
                            [--repetition-penalty R] [--presence-penalty P] [--frequency-penalty F]
                            [--stop TEXT] [--ids] [--threads N] [--tokenizer PATH]
                            [--device cpu|cuda|auto]
        --model PATH       GGUF file, llama2.c .bin (tokenizer beside it), or HF folder
                           (default: the bundled model)
        --prompt TEXT      prompt text (BOS is prepended); without a prompt: BOS only
        --prompt-ids IDS   prompt as token ids, used as given
        --max-tokens N     tokens to generate (default 64)
        --ids              print the generated token ids instead of text
        --weights RECIPE   quantize the weights in memory first (w8, w4g128, w4g32, fp8, mixed,
                           NAME:METHOD or a recipe file; awq/gptq/smoothquant calibrate on built-in
                           text)
        --device D         cpu (default), cuda, or auto (cuda where a GPU is usable)
      """;

  private static final Set<String> VALUED =
      Set.of(
          "model",
          "tokenizer",
          "prompt",
          "prompt-ids",
          "max-tokens",
          "temperature",
          "top-k",
          "top-p",
          "min-p",
          "seed",
          "repetition-penalty",
          "presence-penalty",
          "frequency-penalty",
          "stop",
          "threads",
          "device",
          "weights");

  private final PrintStream out;
  private final PrintStream err;
  private final Map<String, String> env;

  GenerateCommand(PrintStream out, PrintStream err, Map<String, String> env) {
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
      Flags f = Flags.parse(args, VALUED, Set.of("ids", "help"));
      Path modelPath = f.string("model").map(Path::of).orElse(ConfigLoader.bundledModel(env));
      if (f.has("prompt") && f.has("prompt-ids")) {
        throw new UsageException("give --prompt or --prompt-ids, not both");
      }
      int maxTokens = f.integer("max-tokens", 64, 0, 1 << 20);
      SamplingParams params;
      try {
        params =
            new SamplingParams(
                f.real("temperature", 0f),
                f.integer("top-k", 0, 0, Integer.MAX_VALUE),
                f.real("top-p", 0f),
                f.real("min-p", 0f),
                f.real("repetition-penalty", 0f),
                f.real("presence-penalty", 0f),
                f.real("frequency-penalty", 0f),
                f.longValue("seed", new java.security.SecureRandom().nextLong()));
      } catch (IllegalArgumentException e) {
        throw new UsageException("--" + e.getMessage().replace('_', '-'));
      }
      int threads = f.integer("threads", Runtime.getRuntime().availableProcessors(), 1, 1024);
      Device device;
      try {
        device = Device.parse(f.string("device").orElse("cpu"));
      } catch (IllegalArgumentException e) {
        throw new UsageException("--device: " + e.getMessage());
      }
      List<String> stops = f.string("stop").map(List::of).orElse(List.of());
      try (Model model = ModelOpener.load(modelPath, f.string("tokenizer").map(Path::of));
          ComputePool pool = new ComputePool(threads)) {
        int[] prompt;
        if (f.has("prompt-ids")) {
          prompt = f.integers("prompt-ids");
          for (int id : prompt) {
            if (id < 0 || id >= model.config().vocabSize()) {
              throw new UsageException(
                  "--prompt-ids: id " + id + " is outside [0, " + model.config().vocabSize() + ")");
            }
          }
        } else if (f.has("prompt")) {
          prompt = model.tokenizer().encode(f.string("prompt").orElseThrow(), true);
        } else {
          int bos = model.tokenizer().bos();
          if (bos < 0) {
            throw new UsageException("this model has no BOS token: give --prompt or --prompt-ids");
          }
          prompt = new int[] {bos};
        }
        if (prompt.length == 0) {
          throw new UsageException("--prompt: the prompt is empty");
        }
        io.kvant.engine.model.ModelWeights weights = model.weights();
        if (f.has("weights")) {
          weights =
              io.kvant.quant.quantize.Quantizer.quantizeAtLoad(
                      model,
                      io.kvant.quant.quantize.Recipe.resolve(f.string("weights").orElseThrow()))
                  .weights();
        }
        ComputeBackend backend =
            Backends.open(device, CudaOptions.fromEnvironment(System.getenv()), pool, err::println);
        ForwardPass forward = backend.load(model.config(), weights);
        Generator generator =
            device == Device.CPU
                ? new Generator((Transformer) forward, model.tokenizer())
                : new Generator(forward, model.tokenizer(), backend);
        boolean ids = f.flag("ids");
        GenerationResult result =
            generator.generate(
                prompt,
                maxTokens,
                params,
                stops,
                text -> {
                  if (!ids) {
                    out.print(text);
                    out.flush();
                  }
                });
        forward.close();
        backend.close();
        if (ids) {
          out.println(
              java.util.Arrays.stream(result.tokens())
                  .mapToObj(Integer::toString)
                  .collect(Collectors.joining(" ")));
        } else {
          out.println();
        }
        return 0;
      }
    } catch (UsageException e) {
      err.println("kvant generate: " + e.getMessage());
      return 2;
    } catch (IOException | IllegalArgumentException | UnsupportedOperationException e) {
      err.println("kvant generate: " + e.getMessage());
      return 1;
    } catch (io.kvant.cuda.driver.CudaUnavailableException | io.kvant.cuda.driver.CudaException e) {
      err.println("kvant generate: " + e.getMessage());
      return 1;
    }
  }
}
