import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.lang.reflect.Method;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;

/**
 * Two engine jars, each in its own JVM: {@code BatchDecodeBench} (what {@code bench batch --device
 * cpu} runs) of jar A and jar B alternated round by round, driven from this process over the
 * children's standard input and output.
 *
 * <p>Why: on the shared 2-core development machine, separate runs of the same jar scatter by 30%
 * and more with the load of other builds; alternating A and B round by round puts both under the
 * same load at nearly the same time, and the per-round ratio B/A is what is reported (median and
 * quartiles). Why two JVMs: until session 33 both jars ran in one JVM, and whichever jar ran first
 * in the warm-up decoded faster for the whole run: main against a copy of itself, SmolLM2-135M
 * Q8_0, two threads, B first in the warm-up: B/A 1.195 (and 1.133 with the jars' construction
 * order reversed); A first: 0.950 (perf/RESULTS.md, session 33). The likeliest cause, not isolated
 * further: the JDK's own classes (the Vector API's among them) and their profiles are shared by
 * both class loaders, so the engine compiled second was compiled against them in another state. A
 * JVM per jar shares none of that; main against its copy here gave 0.973, 1.043 and 1.004. A run's
 * median still moves by about 5%, so measure a candidate in both orders (A, B and then B, A) and
 * take the geometric mean of the first median and the reciprocal of the second.
 *
 * <pre>
 * ./mvnw -B -o -q install -pl perf -am -DskipTests        # perf/target/classes and classpath.txt
 * cp engine/target/kvant-engine-*-SNAPSHOT.jar /tmp/a.jar  # ... change the engine, rebuild, then:
 * java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED tools/cpu/EngineAb.java \
 *     /tmp/a.jar engine/target/kvant-engine-0.1.0-SNAPSHOT.jar models/kvant-kjv-7m.gguf 16 48 12
 * </pre>
 *
 * Arguments: jar A, jar B, model file, sequences, timed steps per round, rounds, and optionally
 * the warm-up steps before the timed ones (default 8; a long warm-up times decode deep into the
 * context) and {@code paged}: the server's path ({@code BackendDecodeBench}: the CPU backend over
 * the KV cache manager's paged F32 store) instead of {@code BatchDecodeBench} over the contiguous
 * reference store (one transformer per jar, built before the first round); {@code --threads N}
 * compute threads (default 2), integer kernels (the server's default; F16 weights run the float
 * kernels either way); {@code --heap SIZE} each child's {@code -Xmx} (default 3g). Run from the
 * repository root. Three warm-up rounds come first, and A and B take turns going first, in the
 * warm-up as in the timed rounds.
 */
public class EngineAb {
  /** What the coordinator sends a child for one round, and what ends it. */
  private static final String RUN = "run";

  private static final String QUIT = "quit";

  /** A child's first line once its engine is built. */
  private static final String READY = "ready";

  /** Tokens/s to a tenth: the 1B files decode 12-20 tok/s here, where whole numbers hide 5%. */
  private static double tenths(double tps) {
    return Math.rint(tps * 10) / 10;
  }

  public static void main(String[] args) throws Exception {
    if (args.length > 0 && args[0].equals("--child")) {
      child(Arrays.copyOfRange(args, 1, args.length));
      return;
    }
    // "--threads N" and "--heap SIZE" may end the arguments, in either order
    int threads = 2;
    String heap = "3g";
    String[] a = args;
    while (a.length >= 2
        && (a[a.length - 2].equals("--threads") || a[a.length - 2].equals("--heap"))) {
      if (a[a.length - 2].equals("--threads")) {
        threads = Integer.parseInt(a[a.length - 1]);
      } else {
        heap = a[a.length - 1];
      }
      a = Arrays.copyOf(a, a.length - 2);
    }
    if (threads < 1
        || a.length < 6
        || a.length > 8
        || (a.length == 8 && !a[7].equals("paged"))) {
      System.err.println(
          "usage: EngineAb JAR_A JAR_B MODEL SEQUENCES STEPS ROUNDS [WARMUP [paged]]"
              + " [--threads N] [--heap SIZE]");
      System.exit(2);
    }
    int rounds = Integer.parseInt(a[5]);
    String warmup = a.length > 6 ? a[6] : "8";
    boolean paged = a.length == 8;
    Child[] children = new Child[2];
    try {
      for (int i = 0; i < 2; i++) {
        // one at a time, so that neither loads while the other does
        children[i] =
            new Child(
                heap, List.of(a[i], a[2], a[3], a[4], warmup, paged ? "paged" : "contiguous",
                    Integer.toString(threads)));
      }
      double[][] tps = new double[2][rounds];
      for (int r = -3; r < rounds; r++) { // three rounds of warm-up
        for (int k = 0; k < 2; k++) {
          int i = Math.floorMod(r, 2) == 0 ? k : 1 - k; // A first in even rounds, B in odd ones
          double t = children[i].round();
          if (r >= 0) {
            tps[i][r] = t;
          }
        }
      }
      report(tps, rounds);
    } finally {
      for (Child c : children) {
        if (c != null) {
          c.close();
        }
      }
    }
  }

  private static void report(double[][] tps, int rounds) {
    double[] ratio = new double[rounds];
    for (int r = 0; r < rounds; r++) {
      ratio[r] = tps[1][r] / tps[0][r];
    }
    System.out.println("A tok/s " + Arrays.toString(Arrays.stream(tps[0]).map(EngineAb::tenths).toArray()));
    System.out.println("B tok/s " + Arrays.toString(Arrays.stream(tps[1]).map(EngineAb::tenths).toArray()));
    Arrays.sort(ratio);
    double[] sa = tps[0].clone();
    double[] sb = tps[1].clone();
    Arrays.sort(sa);
    Arrays.sort(sb);
    System.out.printf(
        "median A %.1f, B %.1f tok/s; B/A per round: median %.3f, quartiles %.3f-%.3f%n",
        sa[rounds / 2], sb[rounds / 2], ratio[rounds / 2], ratio[rounds / 4], ratio[3 * rounds / 4]);
  }

  /** One jar's JVM: this program with {@code --child}, one round per {@link #RUN} line. */
  private static final class Child implements AutoCloseable {
    private final Process process;
    private final PrintStream in;
    private final BufferedReader out;

    Child(String heap, List<String> args) throws Exception {
      List<String> command = new ArrayList<>();
      command.add(ProcessHandle.current().info().command().orElse("java"));
      command.addAll(
          List.of(
              "--add-modules",
              "jdk.incubator.vector",
              "--enable-native-access=ALL-UNNAMED",
              "-Xmx" + heap,
              "tools/cpu/EngineAb.java",
              "--child"));
      command.addAll(args);
      process =
          new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.INHERIT).start();
      in = new PrintStream(process.getOutputStream(), true);
      out = new BufferedReader(new InputStreamReader(process.getInputStream()));
      String first = out.readLine();
      if (!READY.equals(first)) {
        throw new IllegalStateException("child for " + args.get(0) + " did not start: " + first);
      }
    }

    double round() throws Exception {
      in.println(RUN);
      String line = out.readLine();
      if (line == null) {
        throw new IllegalStateException("child ended: exit " + process.waitFor());
      }
      return Double.parseDouble(line);
    }

    @Override
    public void close() throws Exception {
      in.println(QUIT);
      if (!process.waitFor(30, TimeUnit.SECONDS)) {
        process.destroyForcibly();
      }
    }
  }

  /**
   * A child: JAR MODEL SEQUENCES STEPS WARMUP paged|contiguous THREADS. Builds the engine, says
   * {@link #READY}, then answers each {@link #RUN} with one round's tokens per second.
   */
  private static void child(String[] a) throws Exception {
    boolean paged = a[5].equals("paged");
    int sequences = Integer.parseInt(a[2]);
    int steps = Integer.parseInt(a[3]);
    int warmup = Integer.parseInt(a[4]);
    int threads = Integer.parseInt(a[6]);
    List<String> libs =
        new ArrayList<>(
            List.of(Files.readString(Path.of("perf/target/classpath.txt")).trim().split(":")));
    libs.removeIf(s -> s.matches(".*/kvant-engine-[^/]*\\.jar"));
    List<URL> urls = new ArrayList<>();
    urls.add(Path.of(a[0]).toUri().toURL());
    urls.add(Path.of("perf/target/classes/").toAbsolutePath().toUri().toURL());
    for (String s : libs) {
      urls.add(Path.of(s).toUri().toURL());
    }
    ClassLoader cl =
        new URLClassLoader(urls.toArray(URL[]::new), ClassLoader.getPlatformClassLoader());
    Object model =
        cl.loadClass("io.kvant.quant.artifact.ModelOpener")
            .getMethod("load", Path.class, Optional.class)
            .invoke(null, Path.of(a[1]), Optional.empty());
    Object kernels = cl.loadClass("io.kvant.engine.forward.MatmulKernels").getField("INTEGER").get(null);
    String bench = paged ? "BackendDecodeBench" : "BatchDecodeBench";
    Method run = null;
    for (Method m : cl.loadClass("io.kvant.perf.decode." + bench).getMethods()) {
      if (m.getName().equals("run")
          && m.getParameterCount() == (paged ? 6 : 7)
          && (paged || m.getParameterTypes()[0].getSimpleName().equals("Transformer"))) {
        run = m;
      }
    }
    Object pool =
        cl.loadClass("io.kvant.engine.tensor.ComputePool")
            .getConstructor(int.class)
            .newInstance(threads);
    int bos = 0;
    Object store = null;
    if (paged) {
      // the server's path: the CPU backend over the KV cache manager's paged store
      kernels =
          cl.loadClass("io.kvant.engine.forward.CpuBackend")
              .getConstructor(pool.getClass())
              .newInstance(pool);
    } else {
      // one transformer for every round (the weights repacked once), over the contiguous
      // reference store
      Class<?> config = cl.loadClass("io.kvant.engine.model.LlamaConfig");
      Class<?> weights = cl.loadClass("io.kvant.engine.model.ModelWeights");
      Class<?> transformer = cl.loadClass("io.kvant.engine.forward.Transformer");
      Class<?> modelClass = cl.loadClass("io.kvant.engine.model.Model");
      Object t =
          transformer
              .getConstructor(
                  config,
                  weights,
                  pool.getClass(),
                  cl.loadClass("io.kvant.engine.forward.ActivationObserver"),
                  cl.loadClass("io.kvant.engine.forward.MatmulKernels"))
              .newInstance(
                  modelClass.getMethod("config").invoke(model),
                  modelClass.getMethod("weights").invoke(model),
                  pool,
                  null,
                  kernels);
      bos =
          (int)
              cl.loadClass("io.kvant.perf.decode.BatchDecodeBench")
                  .getMethod("bos", modelClass)
                  .invoke(null, model);
      store = cl.loadClass("io.kvant.perf.decode.BenchKv").getField("CONTIGUOUS").get(null);
      model = t;
    }
    Method tokensPerSecond =
        cl.loadClass("io.kvant.perf.decode." + bench + "$Result").getMethod("tokensPerSecond");
    LongSupplier clock = System::nanoTime;
    BufferedReader commands = new BufferedReader(new InputStreamReader(System.in));
    System.out.println(READY);
    System.out.flush();
    for (String line; (line = commands.readLine()) != null && line.equals(RUN); ) {
      Object res =
          paged
              ? run.invoke(null, model, kernels, sequences, steps, warmup, clock)
              : run.invoke(null, model, bos, sequences, steps, warmup, store, clock);
      System.out.println((double) tokensPerSecond.invoke(res));
      System.out.flush();
    }
  }
}
