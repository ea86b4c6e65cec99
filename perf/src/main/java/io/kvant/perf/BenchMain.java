package io.kvant.perf;

import io.kvant.cuda.Backends;
import io.kvant.cuda.device.CopyBandwidth;
import io.kvant.cuda.device.CudaDevice;
import io.kvant.cuda.device.CudaOptions;
import io.kvant.cuda.driver.CudaUnavailableException;
import io.kvant.engine.forward.ComputeBackend;
import io.kvant.engine.forward.Device;
import io.kvant.engine.forward.MatmulKernels;
import io.kvant.engine.forward.Transformer;
import io.kvant.engine.model.Model;
import io.kvant.engine.tensor.ComputePool;
import io.kvant.perf.bandwidth.BandwidthProbe;
import io.kvant.perf.cli.Args;
import io.kvant.perf.decode.BackendDecodeBench;
import io.kvant.perf.decode.BatchDecodeBench;
import io.kvant.perf.decode.BenchKv;
import io.kvant.perf.decode.DecodeBench;
import io.kvant.perf.decode.PrefillBench;
import io.kvant.perf.synth.ModelShape;
import io.kvant.perf.synth.SynthModelWriter;
import io.kvant.perf.synth.WeightType;
import io.kvant.quant.artifact.ModelOpener;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * {@code ./kvant bench <command> [options]}: kvant's benchmarks. Commands: {@code serve} (load
 * generator), {@code swap} (load with hot swaps), {@code chart} (PNG charts from a result file),
 * {@code synth} (synthetic GGUF models), {@code bandwidth} (memory-bandwidth probe), {@code decode}
 * (single-stream decode speed), {@code sim} (scheduler simulator over a request trace).
 */
public final class BenchMain {
  private final PrintStream out;
  private final PrintStream err;
  private final Map<String, String> env;

  BenchMain(PrintStream out, PrintStream err) {
    this(out, err, Map.of());
  }

  /**
   * @param env the environment ({@code CUDA_HOME}/{@code CUDA_PATH} locate CUDA's libraries for
   *     {@code --device cuda|auto})
   */
  BenchMain(PrintStream out, PrintStream err, Map<String, String> env) {
    this.out = out;
    this.err = err;
    this.env = env;
  }

  public static void main(String[] argv) {
    int rc = new BenchMain(System.out, System.err, System.getenv()).run(argv);
    System.exit(rc);
  }

  static final String USAGE =
      """
      usage: ./kvant bench <command> [options]
        serve      --target HOST:PORT  load generator (closed or open loop), JSON + table
        swap       --target HOST:PORT --admin-token T --swap-version V|--swap-path P  load with hot swaps
        chart      --in RESULT.json --out-dir DIR    PNG charts from a serve/swap result
        synth      --shape NAME --weights TYPE --out FILE.gguf   synthetic model of a real shape
        bandwidth  [--mib 256] [--trials 5] [--threads N]        STREAM-like memory bandwidth
        decode     --model FILE.gguf [--tokens 64] [--threads T] [--kernels int|float] [--device D]  single-stream decode tokens/s
        batch      --model FILE.gguf [--concurrency 1,4,16,64] [--kernels int|float] [--device D]  aggregate batched decode tokens/s
        prefill    --model FILE.gguf [--prompt 512] [--chunk 256] [--kernels int|float]  prompt tokens/s
        sim        --trace FILE [--kv-blocks N] ...              scheduler simulation over a trace
      each command: --help for its options
      """;

  /** Runs a command; returns the exit status. */
  int run(String[] argv) {
    List<String> args = Arrays.asList(argv);
    // The launcher passes "bench" through as the first argument.
    if (!args.isEmpty() && args.getFirst().equals("bench")) {
      args = args.subList(1, args.size());
    }
    if (args.isEmpty() || args.getFirst().equals("--help") || args.getFirst().equals("help")) {
      out.print(USAGE);
      return args.isEmpty() ? 2 : 0;
    }
    String command = args.getFirst();
    List<String> rest = args.subList(1, args.size());
    if (rest.contains("--help")) {
      out.print(Help.of(command));
      return 0;
    }
    try {
      Args a = Args.parse(rest);
      return switch (command) {
        case "serve" -> new ServeCommand(out, err).serve(a);
        case "swap" -> new ServeCommand(out, err).swap(a);
        case "chart" -> new ServeCommand(out, err).chart(a);
        case "synth" -> synth(a);
        case "bandwidth" -> bandwidth(a);
        case "decode" -> decode(a);
        case "batch" -> batch(a);
        case "prefill" -> prefill(a);
        case "sim" -> new SimCommand(out).run(a);
        default -> {
          err.println("unknown command '" + command + "'");
          err.print(USAGE);
          yield 2;
        }
      };
    } catch (IllegalArgumentException e) {
      err.println("kvant bench " + command + ": " + e.getMessage());
      return 2;
    } catch (IOException e) {
      // file problems (a missing or malformed model) name the file in their message
      err.println("kvant bench " + command + ": " + e.getMessage());
      return 1;
    } catch (Exception e) {
      err.println("kvant bench " + command + ": " + e);
      return 1;
    }
  }

  private int synth(Args a) throws Exception {
    ModelShape shape = ModelShape.named(a.required("shape"));
    WeightType type = WeightType.parse(a.get("weights", "Q8_0"));
    Path file = Path.of(a.required("out"));
    long seed = a.longValue("seed", 42);
    int threads = a.intValue("threads", Runtime.getRuntime().availableProcessors());
    a.checkAllUsed();
    SynthModelWriter w = new SynthModelWriter(shape, type, seed, threads);
    long size = w.fileSize();
    Path dir = file.toAbsolutePath().getParent();
    long free = Files.getFileStore(dir).getUsableSpace();
    if (size > free - (1L << 30)) {
      throw new IllegalArgumentException(
          String.format(
              "--out: %.2f GB needed but only %.2f GB free on %s", size / 1e9, free / 1e9, dir));
    }
    long t0 = System.nanoTime();
    ProgressBar bar = new ProgressBar(err, "synth", System::nanoTime);
    w.write(
        file,
        (done, total) ->
            bar.update(
                (double) done / total, String.format("%.2f/%.2f GB", done / 1e9, total / 1e9)));
    bar.finish();
    out.printf(
        "wrote %s: shape %s (%,d parameters), weights %s, %,d bytes, seed %d, %.1f s%n",
        file,
        shape.name(),
        shape.parameterCount(),
        type,
        Files.size(file),
        seed,
        (System.nanoTime() - t0) / 1e9);
    return 0;
  }

  private int bandwidth(Args a) {
    Device device = device(a);
    if (device != Device.CPU) {
      int mib = a.intValue("mib", 2048);
      int trials = a.intValue("trials", 20);
      a.checkAllUsed();
      if (mib < 1 || trials < 1) {
        throw new IllegalArgumentException(
            "--mib and --trials must be >= 1, got " + mib + " and " + trials);
      }
      try (CudaDevice d = CudaDevice.open(CudaOptions.fromEnvironment(env))) {
        double tbs = CopyBandwidth.measure(d, (long) mib << 20, trials, System::nanoTime);
        out.printf("device      %s%n", d.describe());
        out.printf(
            "copy        %.2f TB/s (device to device, %d MiB, read + write counted, median of %d)%n",
            tbs, mib, trials);
        return 0;
      } catch (CudaUnavailableException e) {
        err.println(
            "kvant bench: --device "
                + device.name().toLowerCase(java.util.Locale.ROOT)
                + ": "
                + e.getMessage()
                + (device == Device.AUTO ? "; measuring the CPU's memory" : ""));
        if (device != Device.AUTO) {
          return 2;
        }
      }
      return cpuBandwidth(256, 5, Runtime.getRuntime().availableProcessors());
    }
    int mib = a.intValue("mib", 256);
    int trials = a.intValue("trials", 5);
    int maxThreads = a.intValue("threads", Runtime.getRuntime().availableProcessors());
    a.checkAllUsed();
    if (mib < 1 || trials < 1 || maxThreads < 1) {
      throw new IllegalArgumentException(
          "--mib, --trials and --threads must be >= 1, got "
              + mib
              + ", "
              + trials
              + " and "
              + maxThreads);
    }
    return cpuBandwidth(mib, trials, maxThreads);
  }

  private int cpuBandwidth(int mib, int trials, int maxThreads) {
    int n = (int) Math.min(Integer.MAX_VALUE - 16, (long) mib * (1 << 20) / 8);
    BandwidthProbe probe = new BandwidthProbe(n, trials, System::nanoTime);
    out.printf("bandwidth: 3 arrays x %d MiB of double, best of %d%n", mib, trials);
    out.printf("%-8s %8s %12s%n", "kernel", "threads", "best GB/s");
    List<Integer> counts = maxThreads == 1 ? List.of(1) : List.of(1, maxThreads);
    for (int threads : counts) {
      Map<String, BandwidthProbe.KernelResult> r = probe.run(threads);
      for (BandwidthProbe.KernelResult k : r.values()) {
        out.printf("%-8s %8d %12.2f%n", k.kernel(), k.threads(), k.bestGbPerS());
      }
    }
    return 0;
  }

  private int prefill(Args a) throws Exception {
    Path file = Path.of(a.required("model"));
    int prompt = a.intValue("prompt", 512);
    int chunk = a.intValue("chunk", 256);
    int repeats = a.intValue("repeats", 3);
    int warmup = a.intValue("warmup", 2);
    int threads = a.intValue("threads", Runtime.getRuntime().availableProcessors());
    MatmulKernels kernels = kernels(a);
    a.checkAllUsed();
    try (Model model = ModelOpener.load(file, Optional.empty())) {
      PrefillBench.Result r =
          PrefillBench.run(
              model, prompt, chunk, repeats, warmup, threads, kernels, System::nanoTime);
      out.printf("model       %s (%s)%n", file, model.config());
      out.printf("threads     %d, %s kernels%n", r.threads(), kernels(kernels));
      out.printf(
          "prefill     %d x %d tokens (chunks of %d) in %.3f s = %.1f tokens/s (%.1f ms/prompt)%n",
          r.repeats(),
          r.promptTokens(),
          r.chunk(),
          r.seconds(),
          r.tokensPerSecond(),
          1e3 * r.seconds() / r.repeats());
    }
    return 0;
  }

  private int decode(Args a) throws Exception {
    Path file = Path.of(a.required("model"));
    int tokens = a.intValue("tokens", 64);
    int warmup = a.intValue("warmup", 8);
    int threads = a.intValue("threads", Runtime.getRuntime().availableProcessors());
    double gbPerS = a.doubleValue("bandwidth-gbs", Double.NaN);
    MatmulKernels kernels = kernels(a);
    BenchKv kv = BenchKv.parse(a.get("kv-store", "paged"));
    Device device = device(a);
    a.checkAllUsed();
    if (device != Device.CPU) {
      return onBackend(file, device, threads, List.of(1), tokens, warmup, gbPerS);
    }
    try (Model model = ModelOpener.load(file, Optional.empty())) {
      DecodeBench.Result r =
          DecodeBench.run(model, tokens, warmup, threads, kernels, kv, System::nanoTime);
      out.printf("model       %s (%s)%n", file, model.config());
      out.printf(
          "threads     %d, %s kernels, %s KV store%n",
          r.threads(), kernels(kernels), kv.optionName());
      out.printf(
          "weights     %,d bytes (%.1f MB); streamed per step %,d bytes%n",
          r.weightBytes(), r.weightBytes() / 1e6, r.bytesPerStep());
      out.printf(
          "decode      %d tokens in %.3f s = %.2f tokens/s (%.1f ms/token)%n",
          r.tokens(), r.seconds(), r.tokensPerSecond(), 1e3 / r.tokensPerSecond());
      out.printf("effective   %.2f GB/s of weights%n", r.effectiveGbPerS());
      if (Double.isNaN(gbPerS)) {
        gbPerS =
            new BandwidthProbe(32 << 20, 3, System::nanoTime).run(threads).get("read").bestGbPerS();
        out.printf(
            "bandwidth   %.2f GB/s (read kernel, %d threads, 256 MiB, best of 3)%n",
            gbPerS, threads);
      }
      {
        out.printf(
            "bound       %.2f tokens/s at %.2f GB/s (measured = %.0f%% of the bound)%n",
            r.boundTokensPerSecond(gbPerS),
            gbPerS,
            100 * r.tokensPerSecond() / r.boundTokensPerSecond(gbPerS));
      }
    }
    return 0;
  }

  /**
   * {@code --kernels int|float}: the matmul kernels of decode and batch (default int, as the CPU
   * backend serves).
   */
  private static MatmulKernels kernels(Args a) {
    String v = a.get("kernels", "int");
    return switch (v) {
      case "float" -> MatmulKernels.FLOAT;
      case "int" -> MatmulKernels.INTEGER;
      default -> throw new IllegalArgumentException("--kernels: must be float or int, got " + v);
    };
  }

  private static String kernels(MatmulKernels k) {
    return k == MatmulKernels.INTEGER ? "int" : "float";
  }

  /** {@code --device cpu|cuda|auto} (default cpu: the CPU benchmarks as they were). */
  private static Device device(Args a) {
    try {
      return Device.parse(a.get("device", "cpu"));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("--device: " + e.getMessage());
    }
  }

  /**
   * Decode through a compute backend ({@code --device cuda}, or {@code auto} where a GPU opens):
   * the backend's forward pass over paged KV blocks in its storage, as the server runs it, for each
   * concurrency level. {@code auto} without a usable GPU says why and measures the CPU backend
   * (with its default kernels: {@code --kernels} chooses among the CPU kernels of the plain CPU
   * runs).
   */
  private int onBackend(
      Path file,
      Device device,
      int threads,
      List<Integer> concurrency,
      int tokens,
      int warmup,
      double gbPerS)
      throws Exception {
    try (ComputePool pool = new ComputePool(threads);
        ComputeBackend backend =
            Backends.open(device, CudaOptions.fromEnvironment(env), pool, err::println);
        Model model = ModelOpener.load(file, Optional.empty())) {
      long bytesPerStep = DecodeBench.bytesPerStep(model.weights());
      out.printf("model       %s (%s)%n", file, model.config());
      out.printf("backend     %s%n", backend.describe());
      out.printf(
          "weights     %,d bytes streamed per step; %d timed steps after %d warm-up%n",
          bytesPerStep, tokens, warmup);
      out.printf(
          "%-12s %14s %12s %14s %16s%n",
          "concurrency", "tokens/s", "ms/step", "weight GB/s", "x concurrency 1");
      double base = Double.NaN;
      for (int n : concurrency) {
        BackendDecodeBench.Result r =
            BackendDecodeBench.run(model, backend, n, tokens, warmup, System::nanoTime);
        if (Double.isNaN(base)) {
          base = r.tokensPerSecond() / n;
        }
        out.printf(
            "%-12d %14.2f %12.3f %14.2f %16.2f%n",
            n,
            r.tokensPerSecond(),
            r.msPerStep(),
            bytesPerStep / (r.msPerStep() * 1e-3) / 1e9,
            r.tokensPerSecond() / base);
      }
      if (!Double.isNaN(gbPerS)) {
        out.printf(
            "bound       %.2f tokens/s at %.2f GB/s (single stream)%n",
            gbPerS * 1e9 / bytesPerStep, gbPerS);
      }
    } catch (CudaUnavailableException e) {
      err.println(
          "kvant bench: --device "
              + device.name().toLowerCase(java.util.Locale.ROOT)
              + ": "
              + e.getMessage());
      return 2;
    }
    return 0;
  }

  private int batch(Args a) throws Exception {
    Path file = Path.of(a.required("model"));
    String levels = a.get("concurrency", "1,4,16,64");
    int tokens = a.intValue("tokens", 32);
    int warmup = a.intValue("warmup", 8);
    int threads = a.intValue("threads", Runtime.getRuntime().availableProcessors());
    MatmulKernels kernels = kernels(a);
    BenchKv kv = BenchKv.parse(a.get("kv-store", "paged"));
    Device device = device(a);
    a.checkAllUsed();
    List<Integer> concurrency = new java.util.ArrayList<>();
    for (String level : levels.split(",")) {
      try {
        concurrency.add(Integer.parseInt(level.trim()));
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException("--concurrency: not a list of integers: " + levels);
      }
      // before the weights are loaded and repacked, not after
      if (concurrency.getLast() < 1) {
        throw new IllegalArgumentException(
            "--concurrency: must be >= 1, got " + concurrency.getLast());
      }
    }
    if (device != Device.CPU) {
      return onBackend(file, device, threads, concurrency, tokens, warmup, Double.NaN);
    }
    try (Model model = ModelOpener.load(file, Optional.empty());
        ComputePool pool = new ComputePool(threads)) {
      // one transformer for every level: the weights are repacked once
      Transformer t = new Transformer(model.config(), model.weights(), pool, null, kernels);
      out.printf("model       %s (%s)%n", file, model.config());
      out.printf(
          "threads     %d, %s kernels, %s KV store, %d timed steps after %d warm-up%n",
          threads, kernels(kernels), kv.optionName(), tokens, warmup);
      out.printf("%-12s %14s %12s %16s%n", "concurrency", "tokens/s", "ms/step", "x concurrency 1");
      double base = Double.NaN;
      for (int n : concurrency) {
        BatchDecodeBench.Result r =
            BatchDecodeBench.run(
                t, BatchDecodeBench.bos(model), n, tokens, warmup, kv, System::nanoTime);
        if (n == 1) {
          base = r.tokensPerSecond();
        }
        // relative to the last concurrency-1 level run so far; "-" before there is one
        String ratio =
            Double.isNaN(base)
                ? "-"
                : String.format(java.util.Locale.ROOT, "%.2f", r.tokensPerSecond() / base);
        out.printf("%-12d %14.2f %12.2f %16s%n", n, r.tokensPerSecond(), r.msPerStep(), ratio);
      }
    }
    return 0;
  }
}
