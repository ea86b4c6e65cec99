package io.kvant.perf;

import io.kvant.perf.cli.Args;
import io.kvant.perf.load.BenchResult;
import io.kvant.perf.load.ResultTable;
import io.kvant.perf.load.Slo;
import io.kvant.perf.load.Summary;
import io.kvant.perf.sim.CostModel;
import io.kvant.perf.sim.SchedulerSim;
import io.kvant.perf.sim.Trace;
import io.kvant.perf.synth.ModelShape;
import io.kvant.perf.synth.WeightType;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Map;

/** The {@code sim} command: replays a trace through {@link SchedulerSim}. */
final class SimCommand {
  static final String HELP =
      """
      ./kvant bench sim --trace FILE [options]
        trace: CSV arrival_s,prompt_tokens,output_tokens[,prefix_group,shared_tokens[,priority]]
               (priority: lower first, default 0; an empty prefix_group shares nothing)
        --shape smollm2-135m|llama-3.2-1b|llama-3-8b   model shape for the cost model (default llama-3.2-1b)
        --weights Q4_0|Q8_0|F16|F32                     weight bytes per step (default Q4_0)
        --bandwidth-gbs 20  --gflops 200  --overhead-ms 0.5   machine of the cost model
        --kv-blocks 4096  --block-size 16  --token-budget 2048  --max-seqs 256  --no-prefix-cache
        --slo ttft=..,tpot=..  --out FILE.json
      """;

  private final PrintStream out;

  SimCommand(PrintStream out) {
    this.out = out;
  }

  int run(Args a) throws Exception {
    Path tracePath = Path.of(a.required("trace"));
    ModelShape shape = ModelShape.named(a.get("shape", "llama-3.2-1b"));
    WeightType weights = WeightType.parse(a.get("weights", "Q4_0"));
    double bw = a.doubleValue("bandwidth-gbs", 20) * 1e9;
    double flops = a.doubleValue("gflops", 200) * 1e9;
    double overhead = a.doubleValue("overhead-ms", 0.5) / 1e3;
    SchedulerSim.Config cfg =
        new SchedulerSim.Config(
            a.intValue("token-budget", 2048),
            a.intValue("max-seqs", 256),
            a.intValue("kv-blocks", 4096),
            a.intValue("block-size", 16),
            !a.flag("no-prefix-cache"));
    Slo slo = a.get("slo").map(Slo::parse).orElse(Slo.NONE);
    Path outFile = a.get("out").map(Path::of).orElse(null);
    a.checkAllUsed();
    double bytesPerWeight = (double) weights.ggml().bytesPerBlock() / weights.ggml().blockSize();
    double params = shape.parameterCount();
    double streamed = params - (shape.tied() ? 0 : (double) shape.vocab() * shape.dim());
    double kvBytesPerToken = 2.0 * shape.layers() * shape.kvDim() * 1; // INT8 K and V
    CostModel cost =
        new CostModel(streamed * bytesPerWeight, kvBytesPerToken, params, bw, flops, overhead);
    List<Trace.Entry> trace = Trace.read(tracePath);
    SchedulerSim.Result r = new SchedulerSim(cfg, cost).run(trace);
    Summary s = Summary.of(r.records(), r.durationS(), slo);
    ResultTable.print(out, "Scheduler Simulation (" + trace.size() + " requests)", s);
    out.printf("%-40s%10d%n", "Engine steps:", r.steps());
    out.printf("%-40s%10.1f%n", "Mean tokens per step:", r.meanBatchTokens());
    out.printf("%-40s%10d%n", "Preemptions:", r.preemptions());
    out.printf("%-40s%10.3f%n", "Prefix cache hit ratio:", r.prefixHitRatio());
    out.printf("%-40s%10.3f%n", "Peak KV usage:", r.peakKvUsage());
    out.printf("%-40s%10.2f%n", "Step time, 1 token (ms):", cost.stepSeconds(1, 0) * 1e3);
    if (outFile != null) {
      new BenchResult(
              "sim",
              tracePath.toString(),
              Instant.now().toString(),
              Map.of(),
              List.of(new BenchResult.Point(0, 0, s, r.records())),
              List.of(),
              List.of())
          .write(outFile);
      out.println("wrote " + outFile);
    }
    return 0;
  }
}
