import java.lang.reflect.Method;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.function.LongSupplier;

/**
 * Two engine jars, one JVM: {@code BatchDecodeBench} (what {@code bench batch --device cpu} runs)
 * of jar A and jar B alternated round by round, each jar in its own class loader with the perf
 * module's classes and libraries.
 *
 * <p>Why: on the shared 2-core development machine, separate runs of the same jar scatter by 30%
 * and more with the load of other builds; alternating A and B inside one process puts both under
 * the same load at nearly the same time, and the per-round ratio B/A is what is reported (median
 * and quartiles). A jar against a copy of itself measures the harness's own spread: main against
 * itself, SmolLM2-135M Q4_0, one sequence, one thread, eight rounds (session 31): B/A median
 * 1.035, quartiles 1.03-1.08; SmolLM2-135M Q8_0, two threads (session 32): 1.165 (quartiles
 * 1.11-1.19). So B's place is worth from a few percent to a sixth, depending on the file and the
 * threads, and it holds through every round of a run (so not noise; its cause is not established):
 * measure a candidate in both orders (A, B and then B, A) and take the geometric mean of the
 * first median and the reciprocal of the second.
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
 * kernels either way). Run from the repository root.
 */
public class EngineAb {
  public static void main(String[] args) throws Exception {
    // "--threads N" may end the arguments: the compute threads of each jar's pool (default 2)
    int threads = 2;
    String[] a = args;
    if (a.length >= 2 && a[a.length - 2].equals("--threads")) {
      threads = Integer.parseInt(a[a.length - 1]);
      a = Arrays.copyOf(a, a.length - 2);
    }
    if (threads < 1
        || a.length < 6
        || a.length > 8
        || (a.length == 8 && !a[7].equals("paged"))) {
      System.err.println(
          "usage: EngineAb JAR_A JAR_B MODEL SEQUENCES STEPS ROUNDS [WARMUP [paged]]"
              + " [--threads N]");
      System.exit(2);
    }
    List<String> libs =
        new ArrayList<>(
            List.of(Files.readString(Path.of("perf/target/classpath.txt")).trim().split(":")));
    libs.removeIf(s -> s.matches(".*/kvant-engine-[^/]*\\.jar"));
    Object[] model = new Object[2];
    Object[] kernels = new Object[2];
    int[] bos = new int[2];
    Object[] store = new Object[2];
    boolean paged = a.length == 8;
    Method[] run = new Method[2];
    Method[] tokensPerSecond = new Method[2];
    for (int i = 0; i < 2; i++) {
      List<URL> urls = new ArrayList<>();
      urls.add(Path.of(a[i]).toUri().toURL());
      urls.add(Path.of("perf/target/classes/").toAbsolutePath().toUri().toURL());
      for (String s : libs) {
        urls.add(Path.of(s).toUri().toURL());
      }
      ClassLoader cl =
          new URLClassLoader(urls.toArray(URL[]::new), ClassLoader.getPlatformClassLoader());
      model[i] =
          cl.loadClass("io.kvant.quant.artifact.ModelOpener")
              .getMethod("load", Path.class, Optional.class)
              .invoke(null, Path.of(a[2]), Optional.empty());
      kernels[i] = cl.loadClass("io.kvant.engine.forward.MatmulKernels").getField("INTEGER").get(null);
      String bench = paged ? "BackendDecodeBench" : "BatchDecodeBench";
      for (Method m : cl.loadClass("io.kvant.perf.decode." + bench).getMethods()) {
        if (m.getName().equals("run")
            && m.getParameterCount() == (paged ? 6 : 7)
            && (paged || m.getParameterTypes()[0].getSimpleName().equals("Transformer"))) {
          run[i] = m;
        }
      }
      if (!paged) {
        // one transformer per jar for every round (the weights repacked once), over the
        // contiguous reference store
        Object pool =
            cl.loadClass("io.kvant.engine.tensor.ComputePool")
                .getConstructor(int.class)
                .newInstance(threads);
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
                    modelClass.getMethod("config").invoke(model[i]),
                    modelClass.getMethod("weights").invoke(model[i]),
                    pool,
                    null,
                    kernels[i]);
        bos[i] =
            (int)
                cl.loadClass("io.kvant.perf.decode.BatchDecodeBench")
                    .getMethod("bos", modelClass)
                    .invoke(null, model[i]);
        store[i] = cl.loadClass("io.kvant.perf.decode.BenchKv").getField("CONTIGUOUS").get(null);
        model[i] = t;
      }
      if (paged) {
        // the server's path: the CPU backend over the KV cache manager's paged store
        Object pool =
            cl.loadClass("io.kvant.engine.tensor.ComputePool")
                .getConstructor(int.class)
                .newInstance(threads);
        kernels[i] =
            cl.loadClass("io.kvant.engine.forward.CpuBackend")
                .getConstructor(pool.getClass())
                .newInstance(pool);
      }
      tokensPerSecond[i] =
          cl.loadClass("io.kvant.perf.decode." + bench + "$Result").getMethod("tokensPerSecond");
    }
    int sequences = Integer.parseInt(a[3]);
    int steps = Integer.parseInt(a[4]);
    int rounds = Integer.parseInt(a[5]);
    int warmup = a.length > 6 ? Integer.parseInt(a[6]) : 8;
    double[][] tps = new double[2][rounds];
    LongSupplier clock = System::nanoTime;
    for (int r = -3; r < rounds; r++) { // three rounds of warm-up
      for (int k = 0; k < 2; k++) {
        int i = (r & 1) == 0 ? k : 1 - k; // A first in even rounds, B first in odd ones
        Object res =
            paged
                ? run[i].invoke(null, model[i], kernels[i], sequences, steps, warmup, clock)
                : run[i].invoke(null, model[i], bos[i], sequences, steps, warmup, store[i], clock);
        if (r >= 0) {
          tps[i][r] = (double) tokensPerSecond[i].invoke(res);
        }
      }
    }
    double[] ratio = new double[rounds];
    for (int r = 0; r < rounds; r++) {
      ratio[r] = tps[1][r] / tps[0][r];
    }
    System.out.println("A tok/s " + Arrays.toString(Arrays.stream(tps[0]).map(Math::rint).toArray()));
    System.out.println("B tok/s " + Arrays.toString(Arrays.stream(tps[1]).map(Math::rint).toArray()));
    Arrays.sort(ratio);
    double[] sa = tps[0].clone();
    double[] sb = tps[1].clone();
    Arrays.sort(sa);
    Arrays.sort(sb);
    System.out.printf(
        "median A %.0f, B %.0f tok/s; B/A per round: median %.3f, quartiles %.3f-%.3f%n",
        sa[rounds / 2], sb[rounds / 2], ratio[rounds / 2], ratio[rounds / 4], ratio[3 * rounds / 4]);
  }
}
