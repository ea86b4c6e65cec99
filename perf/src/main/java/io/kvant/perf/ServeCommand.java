package io.kvant.perf;

import io.kvant.api.v1.SwapPolicy;
import io.kvant.client.KvantAdmin;
import io.kvant.client.KvantClient;
import io.kvant.client.RetryPolicy;
import io.kvant.perf.chart.Charts;
import io.kvant.perf.cli.Args;
import io.kvant.perf.load.BenchResult;
import io.kvant.perf.load.BenchResult.Point;
import io.kvant.perf.load.LengthDist;
import io.kvant.perf.load.LoadConfig;
import io.kvant.perf.load.LoadGenerator;
import io.kvant.perf.load.PromptSource;
import io.kvant.perf.load.ResultTable;
import io.kvant.perf.load.Slo;
import io.kvant.perf.load.Summary;
import io.kvant.perf.swap.SwapBench;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.LongSupplier;

/** The {@code serve}, {@code swap} and {@code chart} commands. */
final class ServeCommand {
  private final PrintStream out;
  private final PrintStream err;
  private final LongSupplier nanoTime = System::nanoTime;

  ServeCommand(PrintStream out, PrintStream err) {
    this.out = out;
    this.err = err;
  }

  /** What the load options say. */
  private record Load(
      String target,
      LoadConfig config,
      List<Integer> sweep,
      PromptSource prompts,
      Slo slo,
      Path outFile,
      boolean keepRecords,
      Path chartsDir,
      String token,
      Map<String, String> options) {}

  private Load parseLoad(Args a, List<String> raw, boolean swap) throws Exception {
    String target = a.required("target");
    String mode = a.get("mode", "closed");
    if (!mode.equals("closed") && !mode.equals("open")) {
      throw new IllegalArgumentException("--mode: closed or open, got '" + mode + "'");
    }
    boolean open = mode.equals("open");
    List<Integer> sweep = a.intList("concurrency", List.of(open ? 0 : 1));
    double rate = a.doubleValue("rate", open ? Double.POSITIVE_INFINITY : 0);
    double burstiness = a.doubleValue("burstiness", 1.0);
    var duration = a.duration("duration");
    int requests = a.intValue("requests", duration.isPresent() ? 0 : 100);
    int warmup = a.intValue("warmup", 0);
    long seed = a.longValue("seed", 0);
    LengthDist promptLen = LengthDist.parse(a.get("prompt-len", "fixed:32"));
    LengthDist outputLen = LengthDist.parse(a.get("output-len", "fixed:64"));
    PromptSource prompts =
        a.get("prompts").isPresent()
            ? PromptSource.fromFile(Path.of(a.get("prompts").orElseThrow()), outputLen, seed)
            : PromptSource.synthetic(promptLen, outputLen, seed);
    Slo slo = a.get("slo").map(Slo::parse).orElse(Slo.NONE);
    LoadConfig cfg =
        new LoadConfig(
            open,
            sweep.getFirst(),
            rate,
            burstiness,
            requests,
            duration,
            warmup,
            a.get("model", ""),
            (float) a.doubleValue("temperature", 0),
            (float) a.doubleValue("top-p", 0),
            a.intValue("top-k", 0),
            seed,
            a.duration("deadline").orElse(Duration.ofSeconds(60)));
    Path outFile = Path.of(a.get("out", swap ? "bench-swap.json" : "bench-result.json"));
    boolean records = swap || a.flag("records");
    Path charts = a.get("charts").map(Path::of).orElse(null);
    String token = a.get("token", "");
    Map<String, String> options = new LinkedHashMap<>();
    for (int i = 0; i < raw.size(); i++) {
      String k = raw.get(i);
      boolean hasValue = i + 1 < raw.size() && !raw.get(i + 1).startsWith("--") && !k.contains("=");
      options.put(k, hasValue ? raw.get(++i) : "");
    }
    options.remove("--admin-token");
    return new Load(target, cfg, sweep, prompts, slo, outFile, records, charts, token, options);
  }

  private KvantClient client(Load l) {
    KvantClient.Builder b =
        KvantClient.builder()
            .targets(Arrays.asList(l.target.split(",")))
            .defaultDeadline(l.config.deadline())
            .retryPolicy(RetryPolicy.none());
    if (!l.token.isEmpty()) {
      b.bearerToken(l.token);
    }
    return b.build();
  }

  int serve(Args a) throws Exception {
    Load l = parseLoad(a, a.raw(), false);
    a.checkAllUsed();
    List<Point> points = new ArrayList<>();
    String startedAt = Instant.now().toString();
    try (KvantClient client = client(l)) {
      for (int level = 0; level < l.sweep.size(); level++) {
        int c = l.sweep.get(level);
        LoadConfig cfg = l.config.withConcurrency(c);
        LoadGenerator gen = new LoadGenerator(client, cfg, l.prompts.forLevel(level), nanoTime);
        String label = cfg.openLoop() ? "open c=" + c : "closed c=" + c;
        ProgressBar bar = new ProgressBar(err, label, nanoTime);
        LoadGenerator.Run run = gen.run(listener(bar));
        bar.finish();
        Summary s = Summary.of(run.records(), run.durationS(), l.slo);
        ResultTable.print(out, "Serving Benchmark Result (" + label + ")", s);
        points.add(
            new Point(
                c, cfg.openLoop() ? cfg.rate() : 0, s, l.keepRecords ? run.records() : List.of()));
      }
    }
    BenchResult result =
        new BenchResult("serve", l.target, startedAt, l.options, points, List.of(), List.of());
    finish(result, l);
    return 0;
  }

  int swap(Args a) throws Exception {
    Load l = parseLoad(a, a.raw(), true);
    String token =
        a.get("admin-token").orElse(System.getenv().getOrDefault("KVANT_ADMIN_TOKEN", ""));
    String adminTarget = a.get("admin-target", l.target.split(",")[0]);
    List<String> versions = a.get("swap-version").map(v -> List.of(v.split(","))).orElse(List.of());
    List<String> paths = a.get("swap-path").map(v -> List.of(v.split(","))).orElse(List.of());
    if (versions.isEmpty() == paths.isEmpty()) {
      throw new IllegalArgumentException(
          "give one of --swap-version V[,V...] or --swap-path P[,P...]");
    }
    if (token.isEmpty()) {
      throw new IllegalArgumentException("--admin-token (or KVANT_ADMIN_TOKEN) is required");
    }
    Duration every = a.duration("swap-every").orElse(Duration.ofSeconds(10));
    int maxSwaps = a.intValue("swaps", 100);
    double windowMs = a.duration("swap-window").orElse(Duration.ofSeconds(2)).toNanos() / 1e6;
    SwapPolicy policy =
        switch (a.get("swap-policy", "default").toLowerCase(Locale.ROOT)) {
          case "default" -> SwapPolicy.SWAP_POLICY_UNSPECIFIED;
          case "drain" -> SwapPolicy.SWAP_POLICY_DRAIN;
          case "immediate" -> SwapPolicy.SWAP_POLICY_IMMEDIATE;
          case "pause" -> SwapPolicy.SWAP_POLICY_PAUSE;
          default -> throw new IllegalArgumentException("--swap-policy: drain, immediate or pause");
        };
    a.checkAllUsed();
    String startedAt = Instant.now().toString();
    try (KvantClient client = client(l);
        KvantAdmin admin = KvantAdmin.builder().targets(adminTarget).bearerToken(token).build()) {
      SwapBench bench =
          new SwapBench(
              admin,
              l.config.model(),
              versions.isEmpty() ? SwapBench.TargetKind.PATH : SwapBench.TargetKind.VERSION,
              versions.isEmpty() ? paths : versions,
              policy,
              every,
              maxSwaps,
              nanoTime);
      LoadGenerator gen = new LoadGenerator(client, l.config, l.prompts, nanoTime);
      ProgressBar bar = new ProgressBar(err, "swap c=" + l.config.concurrency(), nanoTime);
      LoadGenerator.Run run = bench.run(gen, listener(bar));
      bar.finish();
      Summary s = Summary.of(run.records(), run.durationS(), l.slo);
      ResultTable.print(out, "Swap Benchmark Result (whole run)", s);
      var phases = SwapBench.phases(run.records(), bench.events(), windowMs);
      printPhases(bench.events(), phases);
      BenchResult result =
          new BenchResult(
              "swap",
              l.target,
              startedAt,
              l.options,
              List.of(
                  new Point(
                      l.config.concurrency(),
                      l.config.openLoop() ? l.config.rate() : 0,
                      s,
                      run.records())),
              bench.events(),
              phases);
      finish(result, l);
    }
    return 0;
  }

  private void printPhases(List<BenchResult.SwapEvent> events, List<BenchResult.SwapPhase> phases) {
    out.printf(
        "%-5s %-24s %9s %6s | %-6s %6s %7s %9s %9s%n",
        "swap", "target", "took ms", "ok", "phase", "reqs", "failed", "p50 TTFT", "p99 TTFT");
    for (BenchResult.SwapPhase p : phases) {
      BenchResult.SwapEvent e = events.get(p.swap());
      String head =
          String.format(
              "%-5d %-24s %9.1f %6s", p.swap() + 1, e.target(), e.endMs() - e.startMs(), e.ok());
      String blank = " ".repeat(head.length());
      phaseRow(head, "before", p.before());
      phaseRow(blank, "during", p.during());
      phaseRow(blank, "after", p.after());
    }
  }

  private void phaseRow(String head, String name, BenchResult.PhaseStats s) {
    out.printf(
        "%s | %-6s %6d %7d %9.1f %9.1f%n",
        head, name, s.requests(), s.failed(), s.ttft().median(), s.ttft().p99());
  }

  int chart(Args a) throws Exception {
    Path in = Path.of(a.required("in"));
    Path dir = Path.of(a.get("out-dir", "."));
    int width = a.intValue("width", 900);
    int height = a.intValue("height", 600);
    a.checkAllUsed();
    for (Path p : new Charts(width, height).writeAll(BenchResult.read(in), dir)) {
      out.println("wrote " + p);
    }
    return 0;
  }

  private void finish(BenchResult result, Load l) throws Exception {
    result.write(l.outFile);
    out.println("wrote " + l.outFile);
    if (l.chartsDir != null) {
      for (Path p : new Charts(900, 600).writeAll(result, l.chartsDir)) {
        out.println("wrote " + p);
      }
    }
  }

  private static LoadGenerator.Listener listener(ProgressBar bar) {
    return new LoadGenerator.Listener() {
      @Override
      public void progress(int done, int failed, double fraction) {
        bar.update(fraction, done + " done, " + failed + " failed");
      }
    };
  }
}
